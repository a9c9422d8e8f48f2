"""Readers: find landed files and stream their rows, never holding a whole file in memory."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from isal import igzip

from ingestion.sources import SourceSpec, builtin_source
from ingestion.validation import Rejected

# built-in source: the contract's shape, format by extension (gzip for the text formats)
FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl",
                    ".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet"}
PARQUET_BATCH_ROWS = 10_000
csv.field_size_limit(64 << 20)  # a 10 MB field is data to check, not a reason to stop reading the file

# one source row: (line or row number from 1, the row as it arrived, the row as a dict, or why it cannot
# be one; None for JSON Lines, which the loader parses itself)
Row = tuple[int, bytes, dict | Rejected | None]


@dataclass(frozen=True)
class LandedFile:
    path: Path
    source: SourceSpec | None  # None: no source reads this file
    problem: str | None = None


def hour_folder(landing_dir: Path, hour: datetime) -> Path:
    """Files that arrived in `hour` (UTC) live in dt=YYYY-MM-DD/hour=HH/."""
    return landing_dir / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def format_of(path: Path) -> str | None:
    """The built-in source's format for a file name, by its extension."""
    parts = path.name.split(".")
    suffix = "." + ".".join(parts[-2:]) if len(parts) > 2 and parts[-1] == "gz" else "." + parts[-1]
    return FORMAT_BY_SUFFIX.get(suffix)


def files_for_hour(landing_dir: Path, hour: datetime, specs: list[SourceSpec] = ()) -> list[LandedFile]:
    """Every file of the hour with the source that reads it: the first spec whose pattern matches,
    else the built-in source by extension. Hidden and marker files (.x, _SUCCESS) are not data."""
    folder = hour_folder(landing_dir, hour)
    if not folder.is_dir():
        return []
    landed = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_"))):
        spec = next((s for s in specs if s.claims(path.name)), None)
        fmt = format_of(path)
        if spec is None and fmt:
            spec = builtin_source(fmt)
        problem = None if spec else ("no source reads this file: name it *.jsonl, *.csv or *.parquet (gzip "
                                     "allowed for text), or add a source spec whose files: pattern matches it")
        landed.append(LandedFile(path, spec, problem))
    return landed


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_binary(path: Path):
    # ISA-L's gzip reader: the same format and errors as the standard library's, at twice the speed
    return igzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


READ_BLOCK = 1 << 16  # decompressed bytes per read: lines are split here, not by gzip's slow readline


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes without the newline) for every non-blank line."""
    number = 0
    rest = b""
    with _open_binary(path) as f:
        while block := f.read(READ_BLOCK):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()  # the unfinished last line waits for the next block
            for line in lines:
                number += 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line and not line.isspace():
                    yield number, line
    if rest and not rest.isspace():  # a last line without a newline
        yield number + 1, rest.rstrip(b"\r")


def open_rows(path: Path, fmt: str) -> tuple[list[str] | None, Iterator[Row]]:
    """The file's column names (None for JSON Lines) and its rows, read lazily."""
    if fmt == "jsonl":
        return None, ((number, raw, None) for number, raw in read_lines(path))
    if fmt == "csv":
        return _csv_rows(path)
    return _parquet_rows(path)


def _csv_rows(path: Path) -> tuple[list[str], Iterator[Row]]:
    text = io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="surrogateescape", newline="")
    consumed: list[str] = []  # physical lines behind the current row, kept as the row's raw text

    def lines():
        for line in text:
            consumed.append(line)
            yield line.replace("\x00", "")  # the csv module refuses NUL; the raw text keeps it for the check

    reader = csv.reader(lines())
    header = next(reader, None) or []
    header = [h.strip().lstrip("\ufeff") for h in header]

    def rows() -> Iterator[Row]:
        line_number = len(consumed) + 1
        consumed.clear()
        with text:
            for values in reader:
                raw = "".join(consumed).rstrip("\r\n").encode("utf-8", "surrogateescape")
                number, line_number = line_number, line_number + len(consumed)
                consumed.clear()
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue  # a blank line
                if len(values) != len(header):
                    yield number, raw, Rejected((f"csv:{len(values)}_fields_for_{len(header)}_columns",))
                    continue
                yield number, raw, dict(zip(header, values, strict=True))

    return header, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[Row]]:
    import pyarrow.parquet as pq  # import on use: only Parquet sources pay for it

    parquet = pq.ParquetFile(path)
    header = list(parquet.schema_arrow.names)

    def rows() -> Iterator[Row]:
        number = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, orjson.dumps(row, default=str), row

    return header, rows()
