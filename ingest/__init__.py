"""The loaders: any city through a YAML mapping (sources/*.yml), France, São Paulo → raw.*.

- `mapping`: the YAML schema (dataclasses) and its validation (`load_mapping`, `MappingError`).
- `fetch`: input resolution (file, folder, glob, http(s) URL with a download cache).
- `loader`: `load_source` — reads the files with DuckDB and writes raw.* in one transaction.
- `preview`: `preview_source` — validate a mapping and report what it would load.
- `france`, `saopaulo`: the French SSMSI files and the São Paulo records → raw.france_* /
  raw.saopaulo_* (DuckDB `read_csv`, strict, typed).
- `csv_files`: the checks both of those share (text sniffing, encodings, rejected rows);
  `csv_limits`: the csv module's field limit, set once.
- `parquet`: raw.* and ml.* of a built warehouse as Parquet, registered as tables of the dbt
  `spark` target (docs/scale-out.md).
"""
