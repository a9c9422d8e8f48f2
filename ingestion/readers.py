"""Readers: find landed files and stream their rows, never holding a whole file in memory."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from isal import igzip

from ingestion.contract import MAX_LINE_BYTES
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
    else the built-in source by extension. Hidden and marker files (.x, _SUCCESS) are not data.
    Only regular files inside the landing directory are read: a symbolic link, a folder or a device
    comes back with the problem and no source (a link could point at any file this process can read)."""
    folder = hour_folder(landing_dir, hour)
    if not folder.is_dir():
        return []
    if not folder.resolve().is_relative_to(landing_dir.resolve()):
        return [LandedFile(folder, None, f"the hour folder leads outside the landing directory {landing_dir} "
                                         "(a symbolic link): refused; move the files into a real folder")]
    landed = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_"))):
        problem = _not_a_regular_file(path)
        spec = None
        if problem is None:
            spec = next((s for s in specs if s.claims(path.name)), None)
            fmt = format_of(path)
            if spec is None and fmt:
                spec = builtin_source(fmt)
            if spec is None:
                problem = ("no source reads this file: name it *.jsonl, *.csv or *.parquet (gzip allowed for "
                           "text), or add a source spec whose files: pattern matches it")
        landed.append(LandedFile(path, spec, problem))
    return landed


def _not_a_regular_file(path: Path) -> str | None:
    mode = path.lstat().st_mode  # lstat: the link itself, not what it points at
    if stat.S_ISREG(mode):
        return None
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "not a regular file (a pipe, socket or device)")
    return f"{kind}: refused, only regular files are read; put the file itself in the hour folder"


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileChecksum:
    """A landed file's SHA-256, taken while its rows are read (open_rows), so a file is read once; read on
    its own when it is asked for first (a file loaded before under the same name: unchanged, it is skipped)
    or when its reader does not stream the file (Parquet reads its footer first)."""

    def __init__(self, path: Path):
        self.path = path
        self.streamed: str | None = None  # the digest of the bytes the rows came from, once all were read

    def __call__(self) -> str:
        return self.streamed or checksum(self.path)

    def opened(self, f) -> io.BufferedReader:
        """`f` (a raw file) read through a hash of every byte; closing it hashes what the reader left."""
        return io.BufferedReader(_Hashed(f, self))


class _Hashed(io.RawIOBase):
    def __init__(self, f, owner: FileChecksum):
        self.f, self.owner, self.digest = f, owner, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.f.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n

    def close(self) -> None:
        if not self.f.closed:
            try:  # a gzip trailer or bytes after the last line still belong to the file's checksum
                for block in iter(lambda: self.f.read(1 << 20), b""):
                    self.digest.update(block)
                self.owner.streamed = self.digest.hexdigest()
            finally:
                self.f.close()
        super().close()


def _open_regular(path: Path):
    """Open for reading, refusing a symbolic link even if one replaced the file since it was listed."""
    return open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NOFOLLOW))


def _open_binary(path: Path, digest: FileChecksum | None = None):
    # ISA-L's gzip reader: the same format and errors as the standard library's, at twice the speed
    f = _open_regular(path)
    if digest is not None:
        f = digest.opened(f)
    if path.suffix != ".gz":
        return f
    gz = igzip.IGzipFile(fileobj=f, mode="rb")
    gz.myfileobj = f  # closed with the reader, as when GzipFile opens a file by name
    return gz


READ_BLOCK = 1 << 16  # decompressed bytes per read: lines are split here, not by gzip's slow readline
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark some editors and exporters write first
TOO_LONG = Rejected(("line:too_long",))
SHOWN_OF_A_LONG_LINE = 4096  # bytes of a line past the cap kept in the quarantine, to recognise it by


def read_lines(path: Path, max_bytes: int = MAX_LINE_BYTES,
               digest: FileChecksum | None = None) -> Iterator[tuple[int, bytes, Rejected | None]]:
    """(line number from 1, raw bytes without the newline, None) for every non-blank line, in one pass:
    a line spread over many blocks is joined once, at its end. A line of more than `max_bytes` comes
    as its first bytes with TOO_LONG, and the rest of it is skipped without being held in memory."""
    number = 0
    pieces: list[bytes] = []  # the unfinished line, block by block
    held = 0  # its length so far
    with _open_binary(path, digest) as f:
        block = f.read(READ_BLOCK).removeprefix(BOM)
        while block:
            start = 0
            while (end := block.find(b"\n", start)) >= 0:
                number += 1
                if held:
                    line = pieces[0] if held > max_bytes else b"".join([*pieces, block[start:end]])
                    length, pieces, held = held + end - start, [], 0
                else:
                    line = block[start:end]
                    length = len(line)
                start = end + 1
                if length > max_bytes:
                    yield number, line[:SHOWN_OF_A_LONG_LINE], TOO_LONG
                elif line.strip():  # blank lines are not rows
                    yield number, line.removesuffix(b"\r"), None
            if rest := block[start:]:
                if held <= max_bytes:
                    pieces.append(rest)
                    if held + len(rest) > max_bytes:  # past the cap: keep only what the quarantine shows
                        pieces = [b"".join(pieces)[:SHOWN_OF_A_LONG_LINE]]
                held += len(rest)
            block = f.read(READ_BLOCK)
    if held:  # a last line without a newline
        number += 1
        if held > max_bytes:
            yield number, pieces[0], TOO_LONG
        elif (line := b"".join(pieces)).strip():
            yield number, line.removesuffix(b"\r"), None


def open_rows(path: Path, fmt: str, digest: FileChecksum | None = None) -> tuple[list[str] | None, Iterator[Row]]:
    """The file's column names (None for JSON Lines) and its rows, read lazily; `digest` takes the file's
    checksum on the way (text formats)."""
    if fmt == "jsonl":
        return None, read_lines(path, digest=digest)
    if fmt == "csv":
        return _csv_rows(path, digest)
    return _parquet_rows(path)


def _csv_rows(path: Path, digest: FileChecksum | None = None) -> tuple[list[str], Iterator[Row]]:
    text = io.TextIOWrapper(_open_binary(path, digest), encoding="utf-8", errors="surrogateescape", newline="")
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
