"""How rows are written for PostgreSQL's COPY.

Events go in CSV format with `null` as NULL and a backslash as the escape character, chosen so a JSON
array of the row's values, without its brackets, is already a valid CSV line: JSON writes a string as
"..." with \\" and \\\\ inside, which this dialect reads back, and an unquoted null is NULL while a
quoted "null" stays text. So the common row is encoded in C by msgspec; the rest go value by value.
Quarantined rows, which carry raw text, go in COPY's text format.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from ingestion.contract import FIELDS

EVENTS_COPY_OPTIONS = "(format csv, null 'null', escape '\\')"
_METADATA = next(i for i, f in enumerate(FIELDS) if f.kind == "json")
_encode = msgspec.json.Encoder().encode
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def csv_line(row: tuple, tail: bytes, plain: bool) -> bytes:
    """One event as a CSV line; `tail` holds the lineage columns and the newline.

    `plain`: the row came from a JSON line without backslashes, so none of its strings holds a quote,
    backslash or control character, and msgspec's JSON encoding of the values is the CSV line.
    """
    values = list(row)
    metadata = values[_METADATA]
    if metadata is not None:
        values[_METADATA] = _encode(metadata).decode()  # jsonb travels as text
    if plain:
        return _encode(values)[1:-1] + tail
    return ",".join([_csv_value(v) for v in values]).encode() + tail


def _csv_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # int, or float with every digit kept


def copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = _encode(value).decode() if isinstance(value, dict) else str(value)
    if _NEEDS_ESCAPE.search(text):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text
