"""Loader: one landed file becomes one atomic ingestion batch.

Every line ends up loaded, recognised as a duplicate (its event id is already in the warehouse or
earlier in the file: the first occurrence wins), or quarantined with reason codes; the batch's
ledger row records the counts, and the database refuses a row where they do not add up.
A file already loaded with the same checksum is skipped; a changed file reloads idempotently.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from ingestion.contract import FIELD_NAMES, FIELDS
from ingestion.readers import checksum, files_for_hour, read_lines
from ingestion.schema import ensure_schema
from ingestion.validation import Rejected, validate

SOURCE = "landing"
COPY_COLUMNS = (*FIELD_NAMES, "landing_hour", "batch_id", "content_hash")
WRITERS_LOCK = "llm-usage-warehouse raw.usage_events writers"
CHUNK_ROWS = 10_000  # rows sent to the server at a time: memory stays flat whatever the file size


@dataclass(frozen=True)
class BatchResult:
    file: str
    status: str  # loaded | skipped | failed
    read: int = 0
    loaded: int = 0
    duplicate: int = 0
    quarantined: int = 0
    conflicting: int = 0  # duplicates whose content differs from the kept row
    error: str | None = None
    batch_id: int | None = None


_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _json_text(value: dict) -> str:
    return orjson.dumps(value).decode()


def _copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        value = _json_text(value)
    text = str(value)
    if _NEEDS_ESCAPE.search(text):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


# How each contract field is written when no value needs COPY escaping (None: a str as it is).
_PLAIN_FORMAT = tuple((f.name, {"text": None, "id": None, "int": str, "number": float.__repr__,
                                "timestamp": datetime.isoformat, "json": _json_text}[f.kind]) for f in FIELDS)


def _copy_row(values: dict, tail: str, raw: bytes) -> str:
    """A validated event as one COPY line; `tail` holds the lineage columns, already rendered.

    A string needs COPY escaping only if it holds a backslash, tab or newline, and JSON can only
    carry those as backslash escapes: a line without a backslash takes the fast path.
    """
    if b"\\" in raw:
        return "\t".join([_copy_text(values[name]) for name in FIELD_NAMES]) + tail
    return "\t".join(["\\N" if (v := values[name]) is None else (v if fmt is None else fmt(v))
                      for name, fmt in _PLAIN_FORMAT]) + tail


class CopyBuffer:
    """Rows in COPY text format, sent to the server every CHUNK_ROWS rows."""

    def __init__(self, cur, target: str):
        self.cur, self.target = cur, target
        self.lines: list[str] = []
        self.rows = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            payload = io.BytesIO("".join(self.lines).encode())
            self.cur.copy_expert(f"copy {self.target} from stdin", payload)
            self.rows += len(self.lines)
            self.lines = []

    def close(self) -> int:
        """Send what is left; returns the number of rows copied."""
        self.flush()
        return self.rows


class NewEvents:
    """Valid events of one batch, written straight into raw.usage_events, CHUNK_ROWS at a time.

    An event whose id is already in the table (from an earlier batch or an earlier chunk of this
    one) or earlier in the same chunk is a duplicate: the first occurrence wins, and a duplicate
    whose content differs is counted as conflicting. Loaders take turns per batch (an advisory
    lock held to commit), so no other loader can add an id between the check and the COPY.
    """

    def __init__(self, cur):
        self.cur = cur
        self.pending: dict[str, tuple[str, str]] = {}  # event_id -> (content hash, COPY line)
        self.loaded = self.duplicate = self.conflicting = 0

    def add(self, event_id: str, content_hash: str, line: str) -> None:
        first = self.pending.get(event_id)
        if first is not None:
            self.duplicate += 1
            self.conflicting += first[0] != content_hash
            return
        self.pending[event_id] = (content_hash, line)
        if len(self.pending) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.cur.execute("select event_id, content_hash from raw.usage_events where event_id = any(%s)",
                         (list(self.pending),))
        for event_id, kept_hash in self.cur.fetchall():
            content_hash, _ = self.pending.pop(event_id)
            self.duplicate += 1
            self.conflicting += kept_hash != content_hash
        if self.pending:
            payload = io.BytesIO("".join(line for _, line in self.pending.values()).encode())
            self.cur.copy_expert(f"copy raw.usage_events ({', '.join(COPY_COLUMNS)}) from stdin", payload)
            self.loaded += len(self.pending)
        self.pending = {}


def _shown(raw: bytes) -> str:
    """The raw line as storable text: bad bytes escaped, NULs made visible."""
    return raw.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def load_file(conn, path: Path, landing_hour: datetime, landing_dir: Path | None = None) -> BatchResult:
    """Load one file as one transaction; never raises for bad content (a failed batch is recorded)."""
    name = str(path.relative_to(landing_dir)) if landing_dir else str(path)
    digest = checksum(path)
    with conn.cursor() as cur:
        cur.execute("select 1 from raw.ingestion_batches where file = %s and checksum = %s and status = 'loaded'",
                    (name, digest))
        if cur.fetchone():
            return BatchResult(name, "skipped")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (WRITERS_LOCK,))
            cur.execute("select nextval('raw.ingestion_batches_batch_id_seq')")
            batch_id = cur.fetchone()[0]
            events = NewEvents(cur)
            quarantine = CopyBuffer(cur, "raw.quarantine (batch_id, source, file, line_number, raw_text, reasons)")
            read = 0
            lineage = f"\t{landing_hour.isoformat()}\t{batch_id}"
            for line_number, raw in read_lines(path):
                read += 1
                outcome = validate(raw, landing_hour)
                if isinstance(outcome, Rejected):
                    quarantine.add("\t".join(_copy_text(v) for v in (
                        batch_id, SOURCE, name, line_number, _shown(raw),
                        "{" + ",".join(outcome.reasons) + "}")) + "\n")
                    continue
                values = outcome.values
                events.add(values["event_id"], outcome.content_hash,
                           _copy_row(values, f"{lineage}\t{outcome.content_hash}\n", raw))
            events.flush()
            result = _write_batch(cur, batch_id, name, digest, landing_hour, read, events, quarantine.close())
        return result
    except (OSError, EOFError, ValueError) as exc:  # unreadable file: gzip damage, permissions, ...
        conn.rollback()
        error = f"{type(exc).__name__}: {exc}"
        with conn, conn.cursor() as cur:
            cur.execute("insert into raw.ingestion_batches (source, file, checksum, landing_hour, status, error,"
                        " finished_at) values (%s, %s, %s, %s, 'failed', %s, now()) returning batch_id",
                        (SOURCE, name, digest, landing_hour, error))
            return BatchResult(name, "failed", error=error, batch_id=cur.fetchone()[0])


def _write_batch(cur, batch_id, name, digest, landing_hour, read, events: NewEvents, quarantined) -> BatchResult:
    """Record the batch in the ledger (the database checks that its counts add up)."""
    result = BatchResult(name, "loaded", read, events.loaded, events.duplicate, quarantined, events.conflicting,
                         batch_id=batch_id)
    cur.execute("""
        insert into raw.ingestion_batches (batch_id, source, file, checksum, landing_hour, rows_read, rows_loaded,
            rows_duplicate, rows_quarantined, rows_conflicting, finished_at, status)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), 'loaded')""",
                (batch_id, SOURCE, name, digest, landing_hour, result.read, result.loaded, result.duplicate,
                 result.quarantined, result.conflicting))
    if result.loaded:  # new rows: the hour must pass its quality gate again before staging reads it
        cur.execute("""insert into raw.landing_hours (landing_hour, gate_status) values (%s, 'pending')
                       on conflict (landing_hour) do update set gate_status = 'pending'""", (landing_hour,))
    return result


def load_hour(conn, landing_dir: Path, hour: datetime) -> list[BatchResult]:
    """Load every file that landed in `hour`; a file that cannot be read does not stop the others."""
    with conn, conn.cursor() as cur:
        ensure_schema(cur)
    return [load_file(conn, path, hour, landing_dir) for path in files_for_hour(landing_dir, hour)]
