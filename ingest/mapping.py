"""Source mappings: one YAML file per city says how its files map onto the canonical fields.

The format is documented in sources/README.md. `load_mapping` validates everything that can be
checked without reading data (keys, field names, strptime formats, regular expressions, time
zones, encodings, the category seed) and raises `MappingError` naming the file, the key and the
problem.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

#: Canonical fields a mapping can fill from columns (see docs/architecture.md, raw.incidents).
CANONICAL_FIELDS: tuple[str, ...] = (
    "incident_id",
    "area",
    "category",
    "offense_code",
    "offense_description",
    "count",
    "latitude",
    "longitude",
)
#: optional coordinates (WGS 84 decimal degrees): mapped both or neither; dbt sets implausible
#: values NULL and counts them (int_incidents__checked, incidents_data_quality)
COORDINATE_FIELDS: tuple[str, ...] = ("latitude", "longitude")
#: the plausible range of each coordinate when the mapping gives none (`range:`)
COORDINATE_LIMITS: dict[str, tuple[float, float]] = {
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
}
#: Names usable in `required` and in row filters: the canonical fields plus `timestamp`
#: (for a filter: the raw timestamp text, occurred_at_raw).
FIELD_NAMES: tuple[str, ...] = (*CANONICAL_FIELDS, "timestamp")
#: fields a `dedupe: {keys}` policy can name (coordinates are not record identity)
DEDUPE_FIELDS: tuple[str, ...] = tuple(n for n in FIELD_NAMES if n not in COORDINATE_FIELDS)
CATEGORY_MAP_FIELDS: tuple[str, ...] = ("category", "offense_code", "offense_description")
FILTER_OPS: tuple[str, ...] = ("matches", "equals", "in", "is_null")
#: filter tests on the parsed timestamp (occurred_at, local wall-clock): since <= t < before
FILTER_TIME_TESTS: tuple[str, ...] = ("since", "before")

_TOP_KEYS = {
    "name": "source name, equal to the file stem (e.g. boston)",
    "title": "human title",
    "country": "holiday calendar (ISO 3166 alpha-2, e.g. US)",
    "timezone": "IANA time zone of the local wall-clock times",
    "input": "default input: 'sample', a file, folder, glob or URL (or a list of them)",
    "sample": "sample generator name (e.g. boston)",
    "files": "file format: delimiter, quote, encodings, pattern",
    "fields": "canonical field -> header aliases (and optional regex)",
    "timestamp": "how occurred_at is built",
    "filters": "named row filters that set filter_reason",
    "required": "fields that must be present as a column in every file",
    "category_map": "field(s) dbt uses to map categories via dbt_project/seeds/category_map.csv",
    "dedupe": "duplicate removal in dbt: 'off' or {keys: [field, ...]} (default: built-in)",
    "orphan_reversals": "a reversal without its original: 'drop' (default) or 'net'",
    "last_day": "is the last day with data complete: 'partial' (default), 'complete' or 'auto'",
    "boundaries": "area polygons for the map: {file: <GeoJSON>, area_property: <property>}",
}
#: dbt policies (sources/README.md, "Cleaning policies"); the first value is the default
DEDUPE_MODES: tuple[str, ...] = ("default", "off", "keys")
ORPHAN_REVERSAL_POLICIES: tuple[str, ...] = ("drop", "net")
LAST_DAY_POLICIES: tuple[str, ...] = ("partial", "complete", "auto")
_REQUIRED_TOP = ("name", "title", "country", "timezone", "fields", "timestamp")
_FILES_KEYS = ("delimiter", "quote", "encodings", "pattern")
_FIELD_KEYS = ("column", "regex", "range")
_TS_SINGLE_KEYS = ("column", "formats", "zone")
_TS_DATE_KEYS = ("date", "date_formats", "hour", "zone")
_FILTER_KEYS = ("field", *FILTER_OPS, *FILTER_TIME_TESTS, "not")
_BOUNDARY_KEYS = ("file", "area_property")
#: GeoJSON geometries an area boundary may have (a map draws filled areas)
BOUNDARY_GEOMETRIES: tuple[str, ...] = ("Polygon", "MultiPolygon")
#: the characters the loader trims from every value (ingest/loader.py's _WS)
_AREA_WS = " \t\r\n\u00a0"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DIRECTIVE_RE = re.compile(r"%(.)")


class MappingError(ValueError):
    """A source mapping is invalid; the message names the file, the key and the problem."""


def normalize_header(name: str) -> str:
    """Header matching key: case-insensitive, surrounding whitespace ignored, and runs of
    whitespace / underscores treated as one `_` (so `Offense Code` matches `OFFENSE_CODE`)."""
    return re.sub(r"[\s_]+", "_", name.replace("\ufeff", "").strip().lower())


@dataclass(frozen=True)
class FileSpec:
    delimiter: str = ","
    quote: str = '"'
    encodings: tuple[str, ...] = ("utf-8", "latin-1")
    pattern: str = "*.csv"


@dataclass(frozen=True)
class FieldSpec:
    """One canonical field: the header aliases tried in order, and an optional regular
    expression whose first capture group is kept (e.g. the leading digits of a beat code)."""

    name: str
    columns: tuple[str, ...]
    regex: str | None = None
    #: coordinates only: the plausible (min, max); values outside are set NULL and counted
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class TimestampSpec:
    """Either one column parsed with `formats`, or a date column (`date_formats`) plus an
    optional hour column (0-23). `zone` is the zone the values are written in: `local` (the
    mapping's time zone), `UTC` or any IANA name; values are converted to local wall-clock."""

    columns: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    date_columns: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ()
    hour_columns: tuple[str, ...] = ()
    zone: str = "local"

    @property
    def is_date_hour(self) -> bool:
        return bool(self.date_columns)


@dataclass(frozen=True)
class FilterSpec:
    """A named row filter: the first one that matches sets `filter_reason` (rows are kept).
    `op` is one of FILTER_OPS, or `range` (value: (since, before), ISO timestamps or None) on
    the parsed timestamp; `negate` matches the rows with a value that the test does not."""

    name: str
    field: str
    op: str
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class BoundariesSpec:
    """Area polygons for the map: a GeoJSON FeatureCollection (`file`, resolved) whose
    `area_property` holds each feature's area code. `areas` are those codes normalised the way
    the loader and dbt normalise `area` (the area field's regex, then trimmed), in feature
    order: :func:`normalised_boundaries` writes them back into the features."""

    file: Path
    area_property: str
    areas: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceMapping:
    name: str
    title: str
    country: str
    timezone: str
    input: tuple[str, ...]
    sample: str | None
    files: FileSpec
    fields: dict[str, FieldSpec]
    timestamp: TimestampSpec
    filters: tuple[FilterSpec, ...] = ()
    required: tuple[str, ...] = ("timestamp",)
    category_map: tuple[str, ...] = ()
    dedupe: str = "default"
    dedupe_keys: tuple[str, ...] = ()
    orphan_reversals: str = "drop"
    last_day: str = "partial"
    boundaries: BoundariesSpec | None = None
    path: Path | None = None
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def default_input(self) -> str:
        return self.input[0] if len(self.input) == 1 else ",".join(self.input)

    def coordinate_range(self, name: str) -> tuple[float, float]:
        """The plausible (min, max) of a coordinate field: the mapping's `range`, else the
        whole globe (COORDINATE_LIMITS)."""
        spec = self.fields.get(name)
        return (spec.range if spec and spec.range else None) or COORDINATE_LIMITS[name]

    def aliases(self, name: str) -> tuple[str, ...]:
        """Header aliases of a field name (`timestamp` → its column, or date and hour)."""
        if name == "timestamp":
            ts = self.timestamp
            return ts.columns or (*ts.date_columns, *ts.hour_columns)
        spec = self.fields.get(name)
        return spec.columns if spec else ()


# --------------------------------------------------------------------------------------------
# discovery


def discover_mappings(sources_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The mapping files in `sources_dir` (`*.yml`, `*.yaml`), sorted by name; with `names`,
    exactly those (in the order given). An unknown name raises MappingError listing the
    available ones."""
    sources_dir = Path(sources_dir)
    available: dict[str, Path] = {}
    for p in sorted([*sources_dir.glob("*.yml"), *sources_dir.glob("*.yaml")]):
        available.setdefault(p.stem, p)
    if not names:
        return [available[k] for k in sorted(available)]
    out: list[Path] = []
    for raw_name in names:
        name = raw_name.strip()
        if not name:
            continue
        if name not in available:
            have = ", ".join(sorted(available)) or "none"
            raise MappingError(
                f"unknown source {name!r}: no {sources_dir / (name + '.yml')} (available: {have})"
            )
        if available[name] not in out:
            out.append(available[name])
    return out


# --------------------------------------------------------------------------------------------
# loading and validation


def seeds_dir_for(mapping_path: Path) -> Path:
    """The dbt seeds of the repo a mapping belongs to: `<repo>/dbt_project/seeds`, beside the
    mapping's `sources/` folder."""
    return mapping_path.resolve().parent.parent / "dbt_project" / "seeds"


def load_mapping(path: str | Path, seeds_dir: Path | None = None) -> SourceMapping:
    """Read and validate a mapping. `seeds_dir` (default: :func:`seeds_dir_for`) is where
    `category_map.csv` is looked up."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: mapping is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: invalid YAML: {exc}") from exc
    if seeds_dir is None:
        seeds_dir = seeds_dir_for(path)
    return _Validator(path, seeds_dir).build(data, hashlib.sha256(text).hexdigest())


_local = threading.local()


def _duck() -> duckdb.DuckDBPyConnection:
    """A per-thread in-memory DuckDB used to check formats, regexes and time zones."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:")
    return con


@functools.lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    rows = _duck().execute("select name from pg_timezone_names()").fetchall()
    return frozenset(r[0] for r in rows)


def check_strptime_format(fmt: str) -> str | None:
    """None when DuckDB's strptime accepts the format, else the problem."""
    if not isinstance(fmt, str) or not fmt:
        return "a format must be a non-empty string"
    if "%" not in fmt:
        return f"format {fmt!r} has no % directive"
    try:
        _duck().execute("select try_strptime('x', ?)", [fmt]).fetchall()
    except duckdb.Error as exc:
        msg = str(exc).split("\n")[0]
        bad = [d for d in _DIRECTIVE_RE.findall(fmt) if d not in "aAbBcdfgGHIjmMpSuUVwWxXyYzZ%"]
        hint = f" (unknown directive %{bad[0]})" if bad else ""
        return f"invalid strptime format {fmt!r}{hint}: {msg}"
    return None


def check_regex(pattern: str, need_group: bool) -> str | None:
    """None when DuckDB (RE2) accepts the pattern (and it has a capture group if needed)."""
    if not isinstance(pattern, str) or not pattern:
        return "a regular expression must be a non-empty string"
    try:
        _duck().execute("select regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        msg = str(exc).split("\n")[0].replace("Invalid Input Error: ", "")
        return f"invalid regular expression {pattern!r}: {msg}"
    if need_group:
        try:
            groups = re.compile(pattern).groups
        except re.error:
            groups = None  # RE2-only syntax: trust DuckDB
        if groups == 0:
            return f"regular expression {pattern!r} needs a capture group, e.g. '^(\\d+)'"
    return None


def check_encoding(name: str) -> str | None:
    if not isinstance(name, str) or not name:
        return "an encoding must be a non-empty string"
    try:
        codecs.lookup(name)
    except LookupError:
        return f"unknown encoding {name!r} (e.g. utf-8, utf-8-sig, latin-1, cp1252, utf-16)"
    return None


def normalise_area(value: str, regex: str | None = None) -> str | None:
    """An area code as the warehouse stores it: the mapping's area regex (its first group,
    DuckDB's regexp_extract as the loader runs it), then trimmed; '' is None (dbt: NULL)."""
    value = value.strip(_AREA_WS)
    if regex:
        value = _duck().execute("select regexp_extract(?, ?, 1)", [value, regex]).fetchone()[0]
    value = value.strip(_AREA_WS).strip()
    return value or None


#: the feature property the normalised copy adds, holding the warehouse's area code (a fixed
#: name, so the map page needs no per-source property name; prefixed not to collide)
BOUNDARY_AREA_PROPERTY = "crimecast_area"


def normalised_boundaries(mapping: SourceMapping) -> dict[str, Any]:
    """The mapping's boundaries FeatureCollection with each feature's normalised area code
    (a string, as the warehouse's `area`) added as property BOUNDARY_AREA_PROPERTY, for the
    map to join; the published properties are kept."""
    spec = mapping.boundaries
    if spec is None:
        raise ValueError(f"{mapping.path}: the mapping has no boundaries")
    data = json.loads(spec.file.read_bytes())
    if len(data["features"]) != len(spec.areas):
        raise MappingError(f"{mapping.path}: boundaries.file: {spec.file} changed since loaded")
    for feat, area in zip(data["features"], spec.areas, strict=True):
        feat["properties"][BOUNDARY_AREA_PROPERTY] = area
    return data


class _Validator:
    def __init__(self, path: Path, seeds_dir: Path) -> None:
        self.path = path
        self.seeds_dir = seeds_dir

    def fail(self, key: str, problem: str) -> MappingError:
        where = f"{key}: " if key else ""
        return MappingError(f"{self.path}: {where}{problem}")

    # -- helpers -------------------------------------------------------------------------
    def _dict(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping of keys, got {type(value).__name__}")
        return value

    def _keys(self, d: dict[str, Any], allowed: Sequence[str], key: str) -> None:
        for k in d:
            if k not in allowed:
                raise self.fail(
                    f"{key}.{k}" if key else str(k),
                    f"unknown key {k!r} (allowed: {', '.join(allowed)})",
                )

    def _str(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def _str_list(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str | int):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"must be a string or a non-empty list of strings, got {value!r}")
        out = []
        for i, v in enumerate(value):
            if isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            out.append(self._str(v, f"{key}[{i}]"))
        return tuple(out)

    # -- sections ------------------------------------------------------------------------
    def build(self, data: Any, sha: str) -> SourceMapping:
        if data is None:
            raise self.fail("", "mapping is empty")
        d = self._dict(data, "")
        self._keys(d, list(_TOP_KEYS), "")
        for k in _REQUIRED_TOP:
            if k not in d:
                raise self.fail(k, f"missing required key ({_TOP_KEYS[k]})")

        name = self._str(d["name"], "name")
        if not _NAME_RE.match(name):
            raise self.fail("name", f"{name!r} must be lower case letters, digits and _")
        if name != self.path.stem:
            raise self.fail("name", f"{name!r} must equal the file name stem {self.path.stem!r}")
        title = self._str(d["title"], "title")
        country = self._str(d["country"], "country")
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise self.fail("country", f"{country!r} must be an ISO 3166 alpha-2 code, e.g. US")
        tz = self._str(d["timezone"], "timezone")
        if tz not in _timezones():
            raise self.fail(
                "timezone", f"unknown time zone {tz!r} (an IANA name, e.g. America/New_York)"
            )

        inputs = self._str_list(d.get("input", "sample"), "input")
        sample = d.get("sample")
        if sample is not None:
            from samples.incidents import GENERATORS

            sample = self._str(sample, "sample")
            if sample not in GENERATORS:
                raise self.fail(
                    "sample",
                    f"unknown sample generator {sample!r} "
                    f"(available: {', '.join(sorted(GENERATORS))})",
                )
        if "sample" in inputs and sample is None:
            raise self.fail("input", "input is 'sample' but the mapping has no 'sample' key")

        files = self._files(d.get("files", {}))
        fields = self._fields(d["fields"])
        timestamp = self._timestamp(d["timestamp"])
        filters = self._filters(d.get("filters", {}), fields)
        required = self._required(d.get("required", ["timestamp"]), fields)
        category_map = self._category_map(d.get("category_map"), fields, name)
        dedupe, dedupe_keys = self._dedupe(d.get("dedupe"), fields)
        orphan_reversals = self._choice(
            d.get("orphan_reversals"), "orphan_reversals", ORPHAN_REVERSAL_POLICIES
        )
        last_day = self._choice(d.get("last_day"), "last_day", LAST_DAY_POLICIES)
        boundaries = self._boundaries(d.get("boundaries"), fields)

        return SourceMapping(
            name=name,
            title=title,
            country=country,
            timezone=tz,
            input=inputs,
            sample=sample,
            files=files,
            fields=fields,
            timestamp=timestamp,
            filters=filters,
            required=required,
            category_map=category_map,
            dedupe=dedupe,
            dedupe_keys=dedupe_keys,
            orphan_reversals=orphan_reversals,
            last_day=last_day,
            boundaries=boundaries,
            path=self.path,
            sha256=sha,
            raw=d,
        )

    def _files(self, value: Any) -> FileSpec:
        d = self._dict(value, "files")
        self._keys(d, _FILES_KEYS, "files")
        delimiter = d.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n":
            raise self.fail("files.delimiter", f"must be one character, got {delimiter!r}")
        quote = d.get("quote", '"')
        if not isinstance(quote, str) or len(quote) != 1 or quote == delimiter:
            raise self.fail(
                "files.quote", f"must be one character other than the delimiter, got {quote!r}"
            )
        encodings = self._str_list(d.get("encodings", ["utf-8", "latin-1"]), "files.encodings")
        for i, enc in enumerate(encodings):
            problem = check_encoding(enc)
            if problem:
                raise self.fail(f"files.encodings[{i}]", problem)
        pattern = self._str(d.get("pattern", "*.csv"), "files.pattern")
        return FileSpec(delimiter=delimiter, quote=quote, encodings=encodings, pattern=pattern)

    def _fields(self, value: Any) -> dict[str, FieldSpec]:
        d = self._dict(value, "fields")
        out: dict[str, FieldSpec] = {}
        for fname, spec in d.items():
            key = f"fields.{fname}"
            if fname not in CANONICAL_FIELDS:
                hint = (
                    " (timestamps go in the 'timestamp' section)"
                    if fname in ("timestamp", "occurred_at", "date", "hour")
                    else ""
                )
                raise self.fail(
                    key,
                    f"unknown canonical field {fname!r} (allowed: "
                    f"{', '.join(CANONICAL_FIELDS)}){hint}",
                )
            regex = None
            bounds = None
            if isinstance(spec, dict):
                self._keys(spec, _FIELD_KEYS, key)
                if spec.get("range") is not None:
                    bounds = self._range(spec["range"], fname, f"{key}.range")
                if "column" not in spec:
                    raise self.fail(f"{key}.column", "missing (the header name or aliases)")
                columns = self._str_list(spec["column"], f"{key}.column")
                if spec.get("regex") is not None:
                    if fname == "count":
                        raise self.fail(f"{key}.regex", "not allowed on the count field")
                    regex = spec["regex"]
                    problem = check_regex(regex, need_group=True)
                    if problem:
                        raise self.fail(f"{key}.regex", problem)
            else:
                columns = self._str_list(spec, key)
            out[fname] = FieldSpec(name=fname, columns=columns, regex=regex, range=bounds)
        mapped = [n for n in COORDINATE_FIELDS if n in out]
        if len(mapped) == 1:
            other = next(n for n in COORDINATE_FIELDS if n not in out)
            raise self.fail(
                f"fields.{mapped[0]}",
                f"{mapped[0]} is mapped without {other}: map both coordinates or neither",
            )
        return out

    def _range(self, value: Any, fname: str, key: str) -> tuple[float, float]:
        """[min, max] of a coordinate, inside the limits of latitude / longitude."""
        if fname not in COORDINATE_FIELDS:
            raise self.fail(key, f"only latitude and longitude take a range, not {fname!r}")
        lo_limit, hi_limit = COORDINATE_LIMITS[fname]
        numbers = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        )
        if not numbers:
            raise self.fail(key, f"must be [min, max] in decimal degrees, got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not lo_limit <= lo < hi <= hi_limit:
            raise self.fail(
                key,
                f"[{lo:g}, {hi:g}]: need min < max within [{lo_limit:g}, {hi_limit:g}]",
            )
        return lo, hi

    def _formats(self, value: Any, key: str) -> tuple[str, ...]:
        formats = self._str_list(value, key)
        for i, fmt in enumerate(formats):
            problem = check_strptime_format(fmt)
            if problem:
                raise self.fail(f"{key}[{i}]", problem)
        return formats

    def _timestamp(self, value: Any) -> TimestampSpec:
        d = self._dict(value, "timestamp")
        if "column" in d and "date" in d:
            raise self.fail(
                "timestamp",
                "give either 'column' (+ formats) or 'date' (+ date_formats, hour), not both",
            )
        if "column" not in d and "date" not in d:
            raise self.fail(
                "timestamp",
                "missing 'column' (one timestamp column + formats) or "
                "'date' (a date column + date_formats, and optionally hour)",
            )
        zone = self._str(d.get("zone", "local"), "timestamp.zone")
        if zone != "local" and zone not in _timezones():
            raise self.fail(
                "timestamp.zone", f"unknown time zone {zone!r} (local, UTC or an IANA name)"
            )
        if "column" in d:
            self._keys(d, _TS_SINGLE_KEYS, "timestamp")
            if "formats" not in d:
                raise self.fail(
                    "timestamp.formats", "missing (strptime formats, e.g. '%Y-%m-%d %H:%M:%S')"
                )
            return TimestampSpec(
                columns=self._str_list(d["column"], "timestamp.column"),
                formats=self._formats(d["formats"], "timestamp.formats"),
                zone=zone,
            )
        self._keys(d, _TS_DATE_KEYS, "timestamp")
        if "date_formats" not in d:
            raise self.fail("timestamp.date_formats", "missing (strptime formats, e.g. '%m/%d/%Y')")
        date_formats = self._formats(d["date_formats"], "timestamp.date_formats")
        for i, fmt in enumerate(date_formats):
            if re.search(r"%[zZ]", fmt):
                raise self.fail(
                    f"timestamp.date_formats[{i}]",
                    "a UTC offset (%z / %Z) is not allowed in a date format: use 'zone'",
                )
        hour = self._str_list(d["hour"], "timestamp.hour") if d.get("hour") is not None else ()
        return TimestampSpec(
            date_columns=self._str_list(d["date"], "timestamp.date"),
            date_formats=date_formats,
            hour_columns=hour,
            zone=zone,
        )

    def _filters(self, value: Any, fields: dict[str, FieldSpec]) -> tuple[FilterSpec, ...]:
        d = self._dict(value if value is not None else {}, "filters")
        out = []
        for fname, spec in d.items():
            key = f"filters.{fname}"
            if not isinstance(fname, str) or not _NAME_RE.match(fname):
                raise self.fail(
                    key,
                    f"filter name {fname!r} must be lower case letters, "
                    "digits and _ (it becomes filter_reason)",
                )
            spec = self._dict(spec, key)
            self._keys(spec, _FILTER_KEYS, key)
            target = self._str(spec.get("field"), f"{key}.field")
            if target not in FIELD_NAMES:
                raise self.fail(
                    f"{key}.field", f"unknown field {target!r} (allowed: {', '.join(FIELD_NAMES)})"
                )
            if target != "timestamp" and target not in fields:
                raise self.fail(f"{key}.field", f"field {target!r} is not mapped in 'fields'")
            negate = spec.get("not", False)
            if not isinstance(negate, bool):
                raise self.fail(f"{key}.not", f"must be true or false, got {negate!r}")
            ops = [op for op in FILTER_OPS if op in spec]
            times = [t for t in FILTER_TIME_TESTS if t in spec]
            if times:
                if ops or target != "timestamp":
                    raise self.fail(
                        key,
                        f"{' / '.join(times)} test(s) the parsed timestamp: use them with "
                        f"field: timestamp and without {', '.join(FILTER_OPS)}",
                    )
                since, before = (
                    self._filter_time(spec.get(t), f"{key}.{t}") for t in FILTER_TIME_TESTS
                )
                if since and before and since >= before:
                    raise self.fail(key, f"since ({since}) must be earlier than before ({before})")
                out.append(FilterSpec(fname, target, "range", (since, before), negate))
                continue
            if len(ops) != 1:
                raise self.fail(
                    key,
                    f"needs exactly one of {', '.join(FILTER_OPS)} "
                    f"(or, on field: timestamp, since and / or before)",
                )
            op = ops[0]
            val = spec[op]
            if op == "matches":
                problem = check_regex(val, need_group=False)
                if problem:
                    raise self.fail(f"{key}.matches", problem)
            elif op == "equals":
                if not isinstance(val, str | int | float) or isinstance(val, bool):
                    raise self.fail(f"{key}.equals", f"must be a string, got {val!r}")
                val = str(val)
            elif op == "in":
                val = self._str_list(val, f"{key}.in")
            elif op == "is_null" and val is not True:
                raise self.fail(f"{key}.is_null", "must be true")
            out.append(FilterSpec(name=fname, field=target, op=op, value=val, negate=negate))
        return tuple(out)

    def _filter_time(self, value: Any, key: str) -> str | None:
        """A date or a local date-time (YAML may already have parsed it) as ISO text."""
        if value is None:
            return None
        if isinstance(value, datetime):
            ts = value
        elif isinstance(value, date):
            ts = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value.strip())
            except ValueError:
                ts = None
        else:
            ts = None
        if ts is None:
            raise self.fail(
                key,
                f"must be a date or date-time like 2019-01-01 or 2019-01-01 06:00, got {value!r}",
            )
        if ts.tzinfo is not None:
            raise self.fail(
                key, f"{value!r} has a UTC offset: give the local wall-clock time of 'timezone'"
            )
        return ts.isoformat(sep=" ")

    def _required(self, value: Any, fields: dict[str, FieldSpec]) -> tuple[str, ...]:
        names = self._str_list(value, "required")
        for i, n in enumerate(names):
            if n not in FIELD_NAMES:
                raise self.fail(
                    f"required[{i}]", f"unknown field {n!r} (allowed: {', '.join(FIELD_NAMES)})"
                )
            if n != "timestamp" and n not in fields:
                raise self.fail(f"required[{i}]", f"field {n!r} is not mapped in 'fields'")
        return names

    def _dedupe(self, value: Any, fields: dict[str, FieldSpec]) -> tuple[str, tuple[str, ...]]:
        """(mode, keys). YAML reads a bare `off` as false: both mean off."""
        if value is None or value == "default":
            return "default", ()
        if value is False or value == "off":
            return "off", ()
        if not isinstance(value, dict):
            raise self.fail(
                "dedupe", f"must be 'off', 'default' or {{keys: [field, ...]}}, got {value!r}"
            )
        self._keys(value, ("keys",), "dedupe")
        if "keys" not in value:
            raise self.fail("dedupe.keys", "missing (the fields that identify a record)")
        names = self._str_list(value["keys"], "dedupe.keys")
        for i, n in enumerate(names):
            if n not in DEDUPE_FIELDS:
                raise self.fail(
                    f"dedupe.keys[{i}]",
                    f"unknown field {n!r} (allowed: {', '.join(DEDUPE_FIELDS)})",
                )
            # category is always there after dbt resolves it; timestamp is its own section
            if n not in ("timestamp", "category") and n not in fields:
                raise self.fail(f"dedupe.keys[{i}]", f"field {n!r} is not mapped in 'fields'")
        return "keys", tuple(n for n in DEDUPE_FIELDS if n in names)

    def _choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value is None:
            return allowed[0]
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def _boundaries(self, value: Any, fields: dict[str, FieldSpec]) -> BoundariesSpec | None:
        """The GeoJSON file of the area polygons, read and checked now so that a bad file is
        a one-line mapping error, not a blank map."""
        if value is None:
            return None
        d = self._dict(value, "boundaries")
        self._keys(d, _BOUNDARY_KEYS, "boundaries")
        for k in _BOUNDARY_KEYS:
            if k not in d:
                raise self.fail(
                    f"boundaries.{k}", "missing (boundaries need file and area_property)"
                )
        if "area" not in fields:
            raise self.fail("boundaries", "the mapping has no 'area' field for the areas to join")
        name = self._str(d["file"], "boundaries.file")
        prop = self._str(d["area_property"], "boundaries.area_property")
        file = Path(name).expanduser()
        if not file.is_absolute():
            file = self.path.resolve().parent / file
        key = "boundaries.file"
        try:
            data = json.loads(file.read_bytes())
        except FileNotFoundError:
            raise self.fail(key, f"{file} does not exist") from None
        except OSError as exc:
            raise self.fail(key, f"cannot read {file}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.fail(key, f"{file} is not JSON: {str(exc).splitlines()[0]}") from None
        kind = data.get("type") if isinstance(data, dict) else None
        features = data.get("features") if kind == "FeatureCollection" else None
        if not isinstance(features, list) or not features:
            what = f"type {kind!r}" if kind else "no GeoJSON type"
            raise self.fail(
                key, f"{file} must be a GeoJSON FeatureCollection with features, found {what}"
            )
        regex = fields["area"].regex
        areas: list[str] = []
        seen: dict[str, int] = {}
        for i, feat in enumerate(features):
            geometry = feat.get("geometry") if isinstance(feat, dict) else None
            gtype = geometry.get("type") if isinstance(geometry, dict) else None
            if gtype not in BOUNDARY_GEOMETRIES:
                raise self.fail(
                    key,
                    f"{file}: feature {i} has geometry {gtype or 'none'}, "
                    f"need {' or '.join(BOUNDARY_GEOMETRIES)}",
                )
            props = feat.get("properties") or {}
            raw = props.get(prop) if isinstance(props, dict) else None
            if raw is None or isinstance(raw, bool | dict | list):
                have = ", ".join(sorted(map(str, props))) if isinstance(props, dict) else ""
                raise self.fail(
                    "boundaries.area_property",
                    f"{file}: feature {i} has no property {prop!r} with an area code "
                    f"(its properties: {have or 'none'})",
                )
            area = normalise_area(str(raw), regex)
            if area is None:
                raise self.fail(
                    "boundaries.area_property",
                    f"{file}: feature {i}: {prop}={raw!r} gives no area code",
                )
            if area in seen:
                raise self.fail(
                    "boundaries.area_property",
                    f"{file}: features {seen[area]} and {i} are both area {area!r}",
                )
            seen[area] = i
            areas.append(area)
        return BoundariesSpec(file=file, area_property=prop, areas=tuple(areas))

    def _category_map(
        self, value: Any, fields: dict[str, FieldSpec], source: str
    ) -> tuple[str, ...]:
        if value is None:
            return ()
        names = self._str_list(value, "category_map")
        for i, n in enumerate(names):
            if n not in CATEGORY_MAP_FIELDS:
                raise self.fail(
                    f"category_map[{i}]", f"{n!r} must be one of {', '.join(CATEGORY_MAP_FIELDS)}"
                )
            if n not in fields:
                raise self.fail(f"category_map[{i}]", f"field {n!r} is not mapped in 'fields'")
        seed = self.seeds_dir / "category_map.csv"
        if seed.is_file():
            with seed.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                cols = [normalize_header(c) for c in (reader.fieldnames or [])]
                if "source" not in cols or "match_on" not in cols:
                    raise self.fail("category_map", f"{seed} has no source / match_on columns")
                have: dict[str, set[str]] = {}
                for r in reader:
                    have.setdefault((r.get("source") or "").strip(), set()).add(
                        (r.get("match_on") or "").strip()
                    )
            for n in names:
                if n not in have.get(source, set()):
                    raise self.fail(
                        "category_map",
                        f"{seed} has no rows with source={source!r} and match_on={n!r}",
                    )
        return names
