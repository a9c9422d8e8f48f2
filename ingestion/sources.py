"""Source specs: logs in the user's own shape, mapped onto the event contract without Python.

A spec is a YAML file in the sources folder (WAREHOUSE_SOURCES_DIR). docs/sources.md documents every key;
`sources/litellm_spend_logs.yaml` is a worked example. Files that no spec claims are read in the
contract's own shape by the built-in source `landing`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml

from ingestion.contract import FIELD_NAMES, FIELDS, REQUIRED

FORMATS = ("jsonl", "csv", "parquet", "postgres")
UNITS_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001}
EPOCH_FORMATS = {"epoch_s": 1.0, "epoch_ms": 1000.0}
RELATIVE_FORMATS = {"relative_s": 1.0, "relative_ms": 1000.0}  # seconds (or ms) after the mapping's base
OFFSET_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KIND = {f.name: f.kind for f in FIELDS}
_SPEC_KEYS = {"name", "format", "files", "timezone", "timestamp_format", "columns", "defaults", "drop",
              "dsn_env", "table", "watermark", "lookback"}
_DATABASE_KEYS = ("dsn_env", "table", "watermark")  # format: postgres reads a table, not files
_MAPPING_KEYS = {"column", "unit", "format", "minus", "since", "values", "base", "offset"}


class SourceSpecError(ValueError):
    """A spec that cannot work; the message names the spec file, the key and what to do."""


@dataclass(frozen=True)
class Mapping:
    """How one contract field is read from a source row."""

    field: str
    column: str | None = None
    unit: float = 1.0  # multiplier to milliseconds
    timestamp_format: str = "iso"
    minus: str | None = None  # tokens given as a total: field = column - minus
    since: str | None = None  # a duration given as two timestamps: field = column - since, in ms
    values: dict = field(default_factory=dict)  # recoded values, e.g. failure -> error
    base: datetime | None = None  # relative times count from it; times without a date take its day
    offset: timedelta | None = None  # added to every timestamp (moves an old trace in time)
    explicit: bool = True  # named in the spec (a file must have its columns), not implied by a field's name

    def columns(self) -> list[str]:
        return [c for c in (self.column, self.minus, self.since) if c]


@dataclass(frozen=True)
class SourceSpec:
    name: str
    format: str
    files: str  # glob matched against file names in each landing hour folder
    mappings: tuple[Mapping, ...]
    defaults: dict
    timezone: ZoneInfo | None
    drop: frozenset[str] = frozenset()  # source columns not kept in metadata (prompts, secrets, ...)
    path: Path | None = None
    database: dict | None = None  # format postgres: dsn_env, table, watermark, lookback

    @cached_property
    def used(self) -> frozenset[str]:
        return frozenset(self.referenced_columns()) | self.drop

    def claims(self, file_name: str) -> bool:
        return self.database is None and fnmatch.fnmatch(file_name, self.files)

    def referenced_columns(self) -> set[str]:
        return {c for m in self.mappings for c in m.columns()}

    def check_columns(self, available: list[str], file: str) -> None:
        """Before loading a file with a header: every column the spec names, and a source for every
        required field, must be there; otherwise the file is refused whole, with this message."""
        where = f"source '{self.name}'" + (f" ({self.path})" if self.path else "")
        header = set(available)
        missing = sorted({c for m in self.mappings if m.explicit for c in m.columns()} - header)
        if missing:
            raise SourceSpecError(
                f"{where}: column {', '.join(map(repr, missing))} is not in {file} (its columns: "
                f"{', '.join(available) or 'none'}); fix the spec's columns or the export")
        mapped = {m.field for m in self.mappings if m.explicit or m.column in header}
        unmet = [f for f in REQUIRED if f not in mapped and f not in self.defaults]
        if unmet:
            raise SourceSpecError(
                f"{where}: {file} has no column for the required field {', '.join(unmet)} (its columns: "
                f"{', '.join(available) or 'none'}); map one under columns: or give a constant under defaults:")

    def to_record(self, row: dict) -> dict:
        """A source row as a contract record; columns the spec does not use are kept in metadata."""
        record: dict = {}
        for m in self.mappings:
            value = self._value(m, row)
            if value is None or value == "":
                value = self.defaults.get(m.field)
            record[m.field] = value
        for name, value in self.defaults.items():
            if record.get(name) in (None, ""):
                record[name] = value
        used = self.used
        extra = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
        if extra:
            metadata = record.get("metadata")
            record["metadata"] = {**extra, **metadata} if isinstance(metadata, dict) else (metadata or extra)
        return record

    def _value(self, m: Mapping, row: dict):
        value = _typed(m.field, row.get(m.column)) if m.column else None
        if m.values and isinstance(value, str | int):
            value = m.values.get(str(value), value)
        kind = _KIND[m.field]
        if kind == "timestamp":
            ts = self._timestamp(value, m.timestamp_format, m.base)
            return ts + m.offset if m.offset and isinstance(ts, datetime) else ts
        if m.since:
            base = m.base or EPOCH  # a duration between two relative times needs no base of its own
            end = self._timestamp(row.get(m.column), m.timestamp_format, base)
            start = self._timestamp(row.get(m.since), m.timestamp_format, base)
            if isinstance(end, datetime) and isinstance(start, datetime) and (end.tzinfo is None) == (
                    start.tzinfo is None):  # two readings of the same clock, with or without a zone
                return (end - start) / timedelta(milliseconds=1)
            return None if end in (None, "") or start in (None, "") else f"{end} - {start}"
        if m.minus and value is not None:
            subtrahend = _typed(m.field, row.get(m.minus))
            if isinstance(value, int | float) and isinstance(subtrahend, int | float):
                return value - subtrahend
            return value if subtrahend in (None, "") else f"{value} - {subtrahend}"  # not numbers: quarantined
        if m.unit != 1.0 and isinstance(value, int | float) and not isinstance(value, bool):
            return value * m.unit
        return value

    def _timestamp(self, value, fmt: str, base: datetime | None = None):
        """A timestamp in the spec's format; naive ones take the spec's time zone."""
        if value is None or value == "":
            return None
        ts = value
        if fmt in RELATIVE_FORMATS:
            number = _number(value)
            if number is None or base is None:
                return value  # left as it is: the contract check quarantines it as not_a_timestamp
            try:
                return base + timedelta(seconds=number / RELATIVE_FORMATS[fmt])
            except OverflowError:
                return value
        if fmt in EPOCH_FORMATS:
            number = _number(value)
            if number is None:
                return value  # left as it is: the contract check quarantines it as not_a_timestamp
            try:
                ts = datetime.fromtimestamp(number / EPOCH_FORMATS[fmt], UTC)
            except (OverflowError, OSError, ValueError):  # beyond the calendar: a bad value, not a bad file
                return value
        elif isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value) if fmt == "iso" else datetime.strptime(value, fmt)
            except ValueError:
                if base is None or fmt != "iso":
                    return value
                try:  # a time of day without a date, e.g. 14:03:22: on the base's day
                    ts = datetime.combine(base.date(), time.fromisoformat(value), base.tzinfo)
                except ValueError:
                    return value
            if base is not None and fmt != "iso" and "%d" not in fmt and "%j" not in fmt:
                ts = datetime.combine(base.date(), ts.time(), base.tzinfo)  # the pattern has no date
        if isinstance(ts, datetime) and ts.tzinfo is None and self.timezone is not None:
            ts = ts.replace(tzinfo=self.timezone)
        return ts


def _number(value):
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
    return None


def _typed(field_name: str, value):
    """Text from CSV (and decimals from Parquet or PostgreSQL) as the contract's type; anything that
    does not parse is left for the contract check."""
    if isinstance(value, Decimal):
        return int(value) if _KIND[field_name] == "int" and value == value.to_integral_value() else float(value)
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    kind = _KIND[field_name]
    if kind in ("int", "number"):
        number = _number(value)
        return value if number is None else number
    if kind == "json" and value.startswith("{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _mapping(field_name: str, entry, spec_where: str, default_format: str) -> Mapping:
    where = f"{spec_where}, columns.{field_name}"
    if isinstance(entry, str):
        entry = {"column": entry}
    if not isinstance(entry, dict) or not entry.get("column"):
        raise SourceSpecError(f"{where}: give a column name, or a mapping with 'column:' and optionally "
                              f"{', '.join(sorted(_MAPPING_KEYS - {'column'}))}")
    unknown = set(entry) - _MAPPING_KEYS
    if unknown:
        raise SourceSpecError(f"{where}: unknown key {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(_MAPPING_KEYS))}")
    kind = _KIND[field_name]
    unit = entry.get("unit", "ms")
    if "unit" in entry and not field_name.endswith("_ms"):
        raise SourceSpecError(f"{where}: 'unit' applies to durations (latency_ms, ttft_ms) only")
    if unit not in UNITS_TO_MS:
        raise SourceSpecError(f"{where}: unit '{unit}' is not one of {', '.join(UNITS_TO_MS)}")
    if "minus" in entry and kind != "int":
        raise SourceSpecError(f"{where}: 'minus' (a total minus a part) applies to token counts only")
    if "since" in entry and not field_name.endswith("_ms"):
        raise SourceSpecError(f"{where}: 'since' (end minus start timestamps) applies to durations only")
    if "format" in entry and kind != "timestamp" and "since" not in entry:
        raise SourceSpecError(f"{where}: 'format' applies to timestamps only")
    values = entry.get("values", {})
    if not isinstance(values, dict):
        raise SourceSpecError(f"{where}: 'values' must map source values to contract values")
    if ("base" in entry or "offset" in entry) and kind != "timestamp":
        raise SourceSpecError(f"{where}: 'base' and 'offset' apply to timestamps (event_time, received_at) only")
    base = _base(entry["base"], where) if "base" in entry else None
    fmt = _timestamp_format(entry.get("format", "relative_s" if base and "format" not in entry else default_format),
                            where)
    if fmt in RELATIVE_FORMATS and base is None and "since" not in entry:
        raise SourceSpecError(f"{where}: format {fmt} counts from a 'base:' time; give one, e.g. "
                              "base: 2026-01-01T00:00:00Z")
    return Mapping(field_name, entry["column"], UNITS_TO_MS[unit], fmt, entry.get("minus"), entry.get("since"),
                   {str(k): v for k, v in values.items()}, base,
                   _offset(entry["offset"], where) if "offset" in entry else None)


def _base(value, where: str) -> datetime:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    try:
        base = datetime.fromisoformat(text)
    except ValueError:
        base = None
    if base is None or base.tzinfo is None:
        raise SourceSpecError(f"{where}: base {text!r} must be a time with its zone, e.g. 2026-01-01T00:00:00Z")
    return base


def _offset(value, where: str) -> timedelta:
    """A shift such as -334d, +6h, 90m or 30s."""
    text = str(value).strip()
    number, unit = text[:-1], text[-1:]
    try:
        return timedelta(seconds=float(number) * OFFSET_UNITS[unit])
    except (KeyError, ValueError):
        raise SourceSpecError(f"{where}: offset {text!r} is not a duration like -334d, +6h, 90m or 30s") from None


def _timestamp_format(fmt, where: str) -> str:
    if not isinstance(fmt, str) or not (fmt == "iso" or fmt in EPOCH_FORMATS or fmt in RELATIVE_FORMATS
                                        or "%" in fmt):
        raise SourceSpecError(f"{where}: timestamp format {fmt!r} is not iso, epoch_s, epoch_ms, relative_s, "
                              "relative_ms or a strptime pattern such as '%Y-%m-%d %H:%M:%S'")
    return fmt


def parse_spec(data, path: Path | None = None, builtin: bool = False) -> SourceSpec:
    """A spec from its parsed YAML; every mistake is reported before any file is read."""
    where = f"source spec {path}" if path else "source spec"
    if not isinstance(data, dict):
        raise SourceSpecError(f"{where}: expected a mapping with keys {', '.join(sorted(_SPEC_KEYS))}")
    unknown = set(data) - _SPEC_KEYS
    if unknown:
        raise SourceSpecError(f"{where}: unknown key {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(_SPEC_KEYS))}")
    needed = ("name", "format", *(_DATABASE_KEYS if data.get("format") == "postgres" else ("files",)))
    for key in needed:
        if not isinstance(data.get(key), str) or not data[key]:
            raise SourceSpecError(f"{where}: '{key}' is required" + (
                " for format postgres" if key in _DATABASE_KEYS else ""))
    name = data["name"]
    if name == "landing" and not builtin:
        raise SourceSpecError(f"{where}: the name 'landing' belongs to the built-in source; choose another")
    if data["format"] not in FORMATS:
        raise SourceSpecError(f"{where}: format '{data['format']}' is not one of {', '.join(FORMATS)}")
    zone = None
    if data.get("timezone"):
        try:
            zone = ZoneInfo(data["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise SourceSpecError(f"{where}: timezone '{data['timezone']}' is not an IANA zone name "
                                  "such as UTC or Europe/Berlin") from None
    default_format = _timestamp_format(data.get("timestamp_format", "iso"), f"{where}, timestamp_format")
    columns = data.get("columns") or {}
    defaults = data.get("defaults") or {}
    if not isinstance(columns, dict) or not isinstance(defaults, dict):
        raise SourceSpecError(f"{where}: 'columns' and 'defaults' must be mappings of contract fields")
    for key in [*columns, *defaults]:
        if key not in FIELD_NAMES:
            raise SourceSpecError(f"{where}: '{key}' is not a field of the event contract "
                                  f"(fields: {', '.join(FIELD_NAMES)})")
    mappings = {f: _mapping(f, entry, where, default_format) for f, entry in columns.items()}
    # a contract field the spec does not map is read from a column of the same name, if there is one
    implicit = {f: Mapping(f, f, timestamp_format=default_format, explicit=False)
                for f in FIELD_NAMES if f not in mappings}
    drop = data.get("drop") or []
    if not isinstance(drop, list) or not all(isinstance(c, str) for c in drop):
        raise SourceSpecError(f"{where}: 'drop' must be a list of source column names")
    database = None
    if data["format"] == "postgres":
        database = {k: data.get(k) for k in (*_DATABASE_KEYS, "lookback")}
        lookback = data.get("lookback", 0)
        if not isinstance(lookback, int | float) or isinstance(lookback, bool) or lookback < 0:
            raise SourceSpecError(f"{where}: lookback must be a number of seconds (0 or more)")
        if len(data["table"].split(".")) > 2:
            raise SourceSpecError(f"{where}: table '{data['table']}' must be name or schema.name")
    return SourceSpec(name, data["format"], data.get("files", ""), tuple({**implicit, **mappings}.values()),
                      dict(defaults), zone, frozenset(drop), path, database)


@cache  # one per format: a spec is immutable
def builtin_source(fmt: str) -> SourceSpec:
    """Files no spec claims: the contract's own field names, read as they are."""
    return parse_spec({"name": "landing", "format": fmt, "files": "*"}, builtin=True)


def load_specs(sources_dir: Path | None) -> list[SourceSpec]:
    """Every spec in the folder, by file name; a broken spec stops the run with its reason."""
    if sources_dir is None or not sources_dir.is_dir():
        return []
    specs = []
    for path in sorted([*sources_dir.glob("*.yaml"), *sources_dir.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SourceSpecError(f"source spec {path}: not valid YAML ({exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0]})") from None
        specs.append(parse_spec(data, path))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SourceSpecError(f"source specs in {sources_dir}: two specs share a name ({', '.join(names)})")
    return specs
