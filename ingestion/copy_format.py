"""How rows are written for PostgreSQL's COPY, in its text format.

Events go with `null` as the NULL marker, chosen so msgspec's JSON array of a row's values is one
translation away from the line: for a row from a JSON line without backslashes, no string holds a quote,
backslash or control character, so dropping the quotes and turning the commas into tabs gives the
line, unless a string holds a comma or is the text "null" (checked; those rows go value by value).
The server parses this format at 3.8 us per row against 4.8 for CSV (bench/RESULTS.md, 2026-11-30).
Quarantined rows, which carry raw text, go with the default NULL marker.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from ingestion.contract import FIELDS

EVENTS_COPY_OPTIONS = "(null 'null')"
_METADATA = next(i for i, f in enumerate(FIELDS) if f.kind == "json")
assert _METADATA == len(FIELDS) - 1, "event_line encodes metadata on its own, after the other fields"
_encode = msgspec.json.Encoder().encode
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_COMMAS_TO_TABS = bytes.maketrans(b",", b"\t")


def event_line(row: tuple, tail: bytes, plain: bool) -> bytes:
    """One event as a line of COPY text format; `tail` holds the lineage columns and the newline.

    `plain`: the row came from a JSON line without backslashes (see the module's docstring).
    """
    if plain and (line := _plain_line(_encode(row[:_METADATA]), row[_METADATA], tail)) is not None:
        return line
    return "\t".join([_event_value(v) for v in row]).encode() + tail


def fast_event_line(row: list, tail: bytes) -> bytes:
    """event_line for a row from validation.fast_row, a list: its metadata is taken off the list."""
    metadata = row.pop()
    line = _plain_line(_encode(row), metadata, tail)
    if line is None:
        row.append(metadata)
        return event_line(tuple(row), tail, plain=False)
    return line


def _plain_line(values: bytes, metadata, tail: bytes) -> bytes | None:
    """The line from msgspec's JSON array of the values before metadata; None if a string holds a
    comma or is the text "null" (the row then goes value by value)."""
    if values.count(b",") == _METADATA - 1 and b'"null"' not in values:
        return (values[1:-1].translate(_COMMAS_TO_TABS, b'"') + b"\t"
                + (b"null" if metadata is None else _encode(metadata)) + tail)
    return None


def _event_value(value) -> str:
    if value is None:
        return "null"
    text = copy_text(value)
    return "nul\\l" if text == "null" else text  # backslash-l reads as l, and is not the NULL marker


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
