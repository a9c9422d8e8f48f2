"""Validation against the event contract: each line becomes a clean row or a quarantine reason."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestion.contract import FIELD_NAMES, FIELDS

# how far an event's time may sit from the hour its file landed in
MAX_CLOCK_SKEW = timedelta(hours=1)
MAX_LATENESS = timedelta(days=30)


@dataclass(frozen=True)
class ValidEvent:
    values: dict  # contract field -> Python value (datetimes aware, metadata a dict)
    content_hash: str


@dataclass(frozen=True)
class Rejected:
    reasons: tuple[str, ...]


def derived_event_id(record: dict) -> str:
    """Deterministic id for an event that has none: sha256 of its canonical JSON (sorted keys)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "derived-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _timestamp(value) -> datetime | str:
    if not isinstance(value, str):
        return "not_a_timestamp"
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return "not_a_timestamp"
    return ts if ts.tzinfo is not None else "timestamp_without_zone"


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def validate(raw: bytes, landing_hour: datetime) -> ValidEvent | Rejected:
    """Check one line against the contract; unknown top-level fields are kept in metadata."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected(("not_utf8",))
    try:
        record = json.loads(text, parse_constant=lambda c: None)  # NaN/Infinity are not JSON numbers
    except (json.JSONDecodeError, RecursionError):
        return Rejected(("malformed_json",))
    if not isinstance(record, dict):
        return Rejected(("not_an_object",))
    if _has_nul(record):
        return Rejected(("nul_character",))

    reasons: list[str] = []
    values: dict = {}
    for f in FIELDS:
        value = record.get(f.name)
        if value is None or value == "":
            if f.required:
                reasons.append(f"{f.name}:missing")
            values[f.name] = None
            continue
        if f.kind == "timestamp":
            ts = _timestamp(value)
            if isinstance(ts, str):
                reasons.append(f"{f.name}:{ts}")
            values[f.name] = ts
        elif f.kind in ("text", "id"):
            if isinstance(value, bool) or not isinstance(value, str | int):
                reasons.append(f"{f.name}:not_text")
            values[f.name] = str(value)
        elif f.kind in ("int", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                reasons.append(f"{f.name}:not_a_number")
                continue
            if f.kind == "int" and value != int(value):
                reasons.append(f"{f.name}:not_an_integer")
                continue
            if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
                reasons.append(f"{f.name}:out_of_range")
            values[f.name] = int(value) if f.kind == "int" else float(value)
        elif f.kind == "json":
            if not isinstance(value, dict):
                reasons.append(f"{f.name}:not_an_object")
            values[f.name] = value

    event_time = values.get("event_time")
    if isinstance(event_time, datetime):
        if event_time > landing_hour + timedelta(hours=1) + MAX_CLOCK_SKEW:
            reasons.append("event_time:in_the_future")
        elif event_time < landing_hour - MAX_LATENESS:
            reasons.append("event_time:too_late")
    if reasons:
        return Rejected(tuple(reasons))

    unknown = {k: v for k, v in record.items() if k not in FIELD_NAMES}
    if unknown:
        values["metadata"] = {**unknown, **(values["metadata"] or {})}
    if values["event_id"] is None:
        values["event_id"] = derived_event_id(record)
    return ValidEvent(values, hashlib.md5(raw).hexdigest())
