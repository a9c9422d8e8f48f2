"""Validation against the event contract: each line becomes a clean row or a quarantine reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal, NamedTuple

import msgspec
import orjson

from ingestion.contract import FIELD_NAMES, FIELDS, MAX_JSON_DEPTH, MAX_TEXT_LENGTH, Field

# how far an event's time may sit from the hour its file landed in
MAX_CLOCK_SKEW = timedelta(hours=1)
MAX_LATENESS = timedelta(days=30)
_FUTURE_LIMIT = timedelta(hours=1) + MAX_CLOCK_SKEW  # from the start of the landing hour


class ValidEvent(NamedTuple):  # a named tuple: built once per event, it must be cheap
    row: tuple  # the contract's fields in order (datetimes aware, metadata a dict)
    content_hash: str

    @property
    def values(self) -> dict:
        return dict(zip(FIELD_NAMES, self.row, strict=True))


@dataclass(frozen=True)
class Rejected:
    reasons: tuple[str, ...]


def derived_event_id(record: dict) -> str:
    """Deterministic id for an event that has none: sha256 of its canonical JSON (sorted keys)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "derived-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


_KNOWN = frozenset(FIELD_NAMES)
# (name, kind, required, min, max, allowed values) as plain tuples: this loop runs once per field per event
_SPEC = tuple((f.name, f.kind, f.required, f.min, f.max, frozenset(f.values)) for f in FIELDS)


def _timestamp(value) -> datetime | str:
    if type(value) is datetime:  # from Parquet or a source spec's timestamp format
        ts = value
    elif type(value) is not str:
        return "not_a_timestamp"
    else:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return "not_a_timestamp"
    return ts if ts.tzinfo is not None else "timestamp_without_zone"


def json_depth(value) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (a scalar is 0), without recursion."""
    depth, level = 0, [(value, 1)]
    while level:
        item, at = level.pop()
        if type(item) is dict:
            item = item.values()
        elif type(item) is not list:
            continue
        depth = max(depth, at)
        level.extend((child, at + 1) for child in item if type(child) in (dict, list))
    return depth


def parse_line(raw: bytes) -> dict | Rejected:
    """One JSON Lines line as a dict, or why it is not one."""
    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL
        return Rejected(("nul_character",))
    try:
        record = orjson.loads(raw)  # strict JSON: NaN, Infinity and invalid UTF-8 are refused
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejected(("not_utf8",))
        if "depth limit" in str(exc):  # valid JSON nested deeper than orjson's 1,024 levels
            return Rejected(("json_too_deep",))
        return Rejected(("malformed_json",))
    if type(record) is not dict:
        return Rejected(("not_an_object",))
    return record


def _fast_type(f: Field):
    """The msgspec type that accepts a subset of what the contract check accepts, with equal values."""
    if f.values:  # in their own case only: other cases take the detailed check, which folds them
        kind = Literal[f.values]
    elif f.max_length:
        kind = Annotated[str, msgspec.Meta(min_length=1, max_length=f.max_length)]  # "" is "missing"
    elif f.kind == "timestamp":  # parsed below by the same function as the check
        kind = Annotated[str, msgspec.Meta(min_length=1)]
    elif f.kind == "int":
        kind = Annotated[int, msgspec.Meta(ge=int(f.min), le=int(f.max))]
    elif f.kind == "number":
        kind = Annotated[float, msgspec.Meta(ge=f.min, **({} if f.max is None else {"le": f.max}))]
    else:
        kind = dict
    required = f.required or f.kind == "id"  # no id: the slow path derives one from the content
    return (f.name, kind) if required else (f.name, kind | None, None)


_ContractEvent = msgspec.defstruct("ContractEvent", [_fast_type(f) for f in FIELDS], kw_only=True,
                                   forbid_unknown_fields=True)  # unknown fields: slow path, into metadata
_decode_event = msgspec.json.Decoder(_ContractEvent).decode
_astuple = msgspec.structs.astuple
_TIMESTAMPS = tuple(i for i, f in enumerate(FIELDS) if f.kind == "timestamp")
EVENT_TIME = FIELD_NAMES.index("event_time")  # position in a row
_TOKEN_NAMES = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
_TOKENS = tuple(FIELD_NAMES.index(name) for name in _TOKEN_NAMES)
_TOKEN_FIELDS = slice(_TOKENS[0], _TOKENS[-1] + 1)  # adjacent in the contract: a slice, not a generator per line
assert _TOKENS == tuple(range(_TOKEN_FIELDS.start, _TOKEN_FIELDS.stop))
_LATENCY, _TTFT = FIELD_NAMES.index("latency_ms"), FIELD_NAMES.index("ttft_ms")
_METADATA = FIELD_NAMES.index("metadata")


def token_parts_reasons(input_, cached, cache_write, output, reasoning) -> list[str]:
    """Cache reads and writes are parts of the input tokens, reasoning tokens part of the output:
    a part larger than its whole would be priced below zero (see the cost marts)."""
    reasons = []
    if (cached or 0) + (cache_write or 0) > (input_ or 0):
        reasons.append("tokens:cache_exceeds_input")
    if (reasoning or 0) > (output or 0):
        reasons.append("tokens:reasoning_exceeds_output")
    return reasons


def event_time_window(landing_hour: datetime, max_lateness: timedelta = MAX_LATENESS) -> tuple[datetime, datetime]:
    """The earliest and latest event time a file landed in `landing_hour` may carry."""
    return landing_hour - max_lateness, landing_hour + _FUTURE_LIMIT


def content_hash(raw: bytes) -> str:
    """What tells two rows with the same event id apart (conflicting duplicates): the line's SHA-1."""
    return hashlib.sha1(raw).hexdigest()


def fast_row(raw: bytes, earliest: datetime, latest: datetime) -> list | None:
    """The common case at C speed: a line without backslashes whose fields are all of the contract's
    types and ranges, as a list in the contract's order. None sends the line to the detailed check,
    which also names the reasons. `earliest` and `latest`: see event_time_window."""
    if b"\\" in raw:  # escapes: NUL, surrogates, what the fast decoder could read otherwise
        return None
    try:
        row = list(_astuple(_decode_event(raw)))
    except (ValueError, RecursionError):  # msgspec's errors, invalid UTF-8, nesting past Python's stack
        return None
    # metadata nests at most as deep as the line has brackets: count them (at C speed) before measuring
    if row[_METADATA] is not None and raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:
        return None
    for i in _TIMESTAMPS:
        if row[i] is not None:
            try:
                row[i] = ts = datetime.fromisoformat(row[i])
            except ValueError:
                return None
            if ts.tzinfo is None:
                return None
    if not earliest <= row[EVENT_TIME] <= latest or not row[0].isprintable():
        return None
    input_, cached, cache_write, output, reasoning = row[_TOKEN_FIELDS]  # token_parts_reasons, without a call
    if (cached or 0) + (cache_write or 0) > (input_ or 0) or (reasoning or 0) > (output or 0):
        return None
    if row[_TTFT] is not None and row[_LATENCY] is not None and row[_TTFT] > row[_LATENCY]:
        return None
    return row


def validate(raw: bytes, landing_hour: datetime, max_lateness: timedelta = MAX_LATENESS) -> ValidEvent | Rejected:
    """Check one JSON line against the contract; unknown top-level fields are kept in metadata.

    An event may be at most `max_lateness` older than the hour it landed in (event_time:too_late)."""
    row = fast_row(raw, *event_time_window(landing_hour, max_lateness))
    if row is not None:
        return ValidEvent(tuple(row), content_hash(raw))
    return validate_slowly(raw, landing_hour, max_lateness)


def validate_slowly(raw: bytes, landing_hour: datetime,
                    max_lateness: timedelta = MAX_LATENESS) -> ValidEvent | Rejected:
    """The detailed contract check of one JSON line, reason by reason."""
    record = parse_line(raw)
    if type(record) is Rejected:
        return record
    return validate_record(record, landing_hour, raw, max_lateness)


def validate_record(record: dict, landing_hour: datetime, source_row: bytes,
                    max_lateness: timedelta = MAX_LATENESS) -> ValidEvent | Rejected:
    """Check one record (contract field -> value) against the contract; `source_row` is hashed."""
    reasons: list[str] = []
    values: dict = {}
    get = record.get
    for name, kind, required, low, high, allowed in _SPEC:
        value = get(name)
        if value is None or value == "":
            if required:
                reasons.append(name + ":missing")
            values[name] = None
        elif kind == "text" or kind == "id":
            kind_of = type(value)
            if kind_of is int:
                value = str(value)
            elif kind_of is not str:
                reasons.append(name + ":not_text")
            elif len(value) > MAX_TEXT_LENGTH:
                reasons.append(name + ":too_long")
            elif allowed:
                value = value.strip().lower()  # "ERROR" and "Success " are what they say
                if value not in allowed:
                    reasons.append(name + ":not_allowed")
            values[name] = value
        elif kind == "int" or kind == "number":
            kind_of = type(value)
            if kind_of is float:
                if kind == "int":
                    if not value.is_integer():  # orjson has already refused NaN and Infinity
                        reasons.append(name + ":not_an_integer")
                        continue
                    value = int(value)
            elif kind_of is int:
                if kind == "number":
                    value = float(value)
            else:
                reasons.append(name + ":not_a_number")
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                reasons.append(name + ":out_of_range")
            values[name] = value
        elif kind == "timestamp":
            ts = _timestamp(value)
            if type(ts) is str:
                reasons.append(name + ":" + ts)
            values[name] = ts
        else:  # json
            if type(value) is not dict:
                reasons.append(name + ":not_an_object")
            values[name] = value

    event_id = values["event_id"]
    if type(event_id) is str and not event_id.isprintable():  # ids travel as one line in COPY and arrays
        reasons.append("event_id:not_printable")
    event_time = values["event_time"]
    if type(event_time) is datetime:
        earliest, latest = event_time_window(landing_hour, max_lateness)
        if event_time > latest:
            reasons.append("event_time:in_the_future")
        elif event_time < earliest:
            reasons.append("event_time:too_late")
    if not any(reason.split(":")[0] in _TOKEN_NAMES for reason in reasons):  # one reason per mistake
        reasons += token_parts_reasons(*(values[name] for name in _TOKEN_NAMES))
    ttft, latency = values.get("ttft_ms"), values.get("latency_ms")
    if type(ttft) is float and type(latency) is float and ttft > latency and not any(
            reason.startswith(("ttft_ms:", "latency_ms:")) for reason in reasons):
        reasons.append("ttft_ms:exceeds_latency")  # the first token cannot arrive after the request ended

    unknown = {k: v for k, v in record.items() if k not in _KNOWN}
    if unknown and type(values["metadata"]) in (dict, type(None)):
        values["metadata"] = {**unknown, **(values["metadata"] or {})}
    if type(values["metadata"]) is dict and json_depth(values["metadata"]) > MAX_JSON_DEPTH:
        reasons.append("metadata:too_deep")
    if reasons:
        return Rejected(tuple(reasons))
    if values["event_id"] is None:
        values["event_id"] = derived_event_id(record)
    return ValidEvent(tuple([values[name] for name in FIELD_NAMES]), content_hash(source_row))
