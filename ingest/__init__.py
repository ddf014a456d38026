"""Generic, declarative source loader: a YAML mapping per city (sources/*.yml) → raw.* tables.

- `mapping`: the YAML schema (dataclasses) and its validation (`load_mapping`, `MappingError`).
- `fetch`: input resolution (file, folder, glob, http(s) URL with a download cache).
- `loader`: `load_source` — reads the files with DuckDB and writes raw.* in one transaction.
- `preview`: `preview_source` — validate a mapping and report what it would load.
"""
