"""Loader: one landed file (or one read of an application table) becomes one atomic ingestion batch.
Which reader a source needs is its caller's choice (ingestion/landing.py); the loader takes rows.

Every row ends up loaded, recognised as a duplicate (its event id is already registered in
raw.event_ids or earlier in the chunk: the first occurrence wins), or quarantined with reason codes;
the batch's ledger row records the counts, and the database refuses a row where they do not add up.
A file already loaded with the same checksum is skipped; a changed file reloads idempotently.
Rows are checked on this thread while a writer thread stores the previous chunk (ingestion/writer.py).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg2
import psycopg2.errors

from ingestion.contract import FIELD_NAMES, LINEAGE_COLUMNS
from ingestion.copy_format import EVENTS_COPY_OPTIONS, copy_text, event_line, fast_event_line
from ingestion.pseudonyms import pseudonymiser
from ingestion.readers import FileChecksum, format_of, open_rows
from ingestion.schema import day_partitions, ensure_day_partition
from ingestion.sources import SourceSpec, SourceSpecError, builtin_source
from ingestion.validation import (
    EVENT_TIME,
    MAX_LATENESS,
    Rejected,
    ValidEvent,
    content_hash,
    event_time_window,
    fast_row,
    parse_line,
    validate,
    validate_record,
    validate_slowly,
)
from ingestion.writer import ServerWriter

USER_ID = FIELD_NAMES.index("user_id")  # position in a row

BUILTIN = "landing"  # the source of files in the contract's own shape
NOT_READ = "-"  # the checksum recorded for a file refused unread
COPY_COLUMNS = (*FIELD_NAMES, *(name for name, _ in LINEAGE_COLUMNS))
# Loaders of different files run side by side (ingestion/parallel.py): the registry's unique key keeps every
# event once whoever commits first, and a deadlock between two of them undoes one batch, which starts again
DEADLOCK_ATTEMPTS = 5
# rows sent to the server at a time: memory stays flat whatever the file size; each chunk costs three
# statements, and 2,500 rows loaded 1.2M events 18-30 % faster than 1,000 (bench/RESULTS.md, 2026-11-29)
CHUNK_ROWS = 2_500
FIRST_CHUNK_ROWS = 125  # a small first chunk puts the server to work early in each batch
# PostgreSQL caches 64 subtransactions per session in shared memory; past that, every other session's
# visibility checks slow down. A batch takes at most this many savepoints, then registers the slow way.
MAX_SAVEPOINTS = 48


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


class CopyBuffer:
    """Rows in COPY text format, sent to the server every CHUNK_ROWS rows."""

    def __init__(self, writer: ServerWriter, target: str):
        self.writer, self.target = writer, target
        self.lines: list[str] = []
        self.rows = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            text, self.rows = "".join(self.lines).encode(), self.rows + len(self.lines)
            self.lines = []
            self.writer.submit(lambda: self.writer.copy(f"copy {self.target} from stdin", text))

    def close(self) -> int:
        """Send what is left; returns the number of rows copied."""
        self.flush()
        return self.rows


class NewEvents:
    """Valid events of one batch, registered in raw.event_ids and copied into raw.usage_events,
    CHUNK_ROWS at a time.

    An event whose id is already registered (by an earlier batch or an earlier chunk of this one) or
    earlier in the same chunk is a duplicate: the first occurrence wins, and a duplicate whose
    content differs is counted as conflicting. Ids and rows commit together with the batch.
    """

    def __init__(self, writer: ServerWriter, batch_id: int):
        self.writer, self.batch_id = writer, batch_id
        self.pending: dict[str, tuple[str, bytes]] = {}  # event_id -> (content hash, COPY line)
        self.first = self.last = None  # event-time span of the chunk: its day partitions must exist
        self.chunk_rows = FIRST_CHUNK_ROWS
        self.savepoints = 0
        self.partitions = set(day_partitions(writer.cur))
        self.loaded = self.duplicate = self.conflicting = 0

    def add(self, event_id: str, event_time: datetime, content_hash: str, line: bytes) -> None:
        first = self.pending.get(event_id)
        if first is not None:
            self.duplicate += 1
            self.conflicting += first[0] != content_hash
            return
        self.pending[event_id] = (content_hash, line)
        if self.first is None:
            self.first = self.last = event_time
        elif event_time < self.first:
            self.first = event_time
        elif event_time > self.last:
            self.last = event_time
        if len(self.pending) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.chunk_rows = min(2 * self.chunk_rows, CHUNK_ROWS)
            days = utc_days(self.first, self.last)
            pending, self.pending, self.first, self.last = self.pending, {}, None, None
            # payloads are built here, on the reading thread, so the writer sends statements back to back
            tail = f"\t{self.batch_id}\n"
            ids = "".join([(i if "\\" not in i else i.replace("\\", "\\\\")) + "\t" + p[0] + tail
                           for i, p in pending.items()]).encode()
            rows = b"".join([p[1] for p in pending.values()])
            self.writer.submit(lambda: self._store(pending, ids, rows, days))

    def _store(self, pending: dict, ids: bytes, rows: bytes, days: list[date]) -> None:
        """On the writer thread: register the chunk's ids, then copy the rows whose ids this batch won."""
        if self._register_all(ids):
            won = len(pending)
        else:
            new = self._register_new(pending)
            won, rows = len(new), b"".join([pending[event_id][1] for event_id in new])
        if not won:
            return
        cur = self.writer.cur
        for day in sorted(set(days) - self.partitions):
            ensure_day_partition(cur, day)
            self.partitions.add(day)
        self.writer.copy(f"copy raw.usage_events ({', '.join(COPY_COLUMNS)}) from stdin {EVENTS_COPY_OPTIONS}", rows)
        self.loaded += won

    def _register_all(self, payload: bytes) -> bool:
        """The common case, at COPY speed: no id of the chunk is registered yet. False if one was
        (the unique key refuses the COPY, and the savepoint undoes it), or if savepoints ran out."""
        if self.savepoints >= MAX_SAVEPOINTS:
            return False
        cur = self.writer.cur
        # one round trip: the previous chunk's savepoint (ids and rows stored) is released as this one's is taken
        cur.execute("release savepoint register_chunk; savepoint register_chunk" if self.savepoints
                    else "savepoint register_chunk")
        self.savepoints += 1
        try:
            self.writer.copy("copy raw.event_ids (event_id, content_hash, batch_id) from stdin", payload)
        except psycopg2.errors.UniqueViolation:
            cur.execute("rollback to savepoint register_chunk")  # the savepoint stays, for the next release
            return False
        return True

    def _register_new(self, pending: dict) -> list[str]:
        """Register the ids that are new, count the others as duplicates; returns the new ones."""
        cur = self.writer.cur
        # ids are printable (the contract refuses others), so a newline separates them safely
        cur.execute("""
            insert into raw.event_ids (event_id, content_hash, batch_id)
            select id, h, %s from unnest(string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n')) as claim(id, h)
            on conflict (event_id) do nothing
            returning event_id""", (self.batch_id, "\n".join(pending), "\n".join([p[0] for p in pending.values()])))
        won = [event_id for (event_id,) in cur.fetchall()]
        self._count_duplicates(pending.keys() - set(won), pending)
        return won

    def _count_duplicates(self, ids: set[str], pending: dict) -> None:
        cur = self.writer.cur
        cur.execute("select event_id, content_hash from raw.event_ids where event_id = any(%s)", (list(ids),))
        for event_id, kept_hash in cur.fetchall():
            self.duplicate += 1
            self.conflicting += kept_hash != pending[event_id][0]


def utc_days(first: datetime, last: datetime) -> list[date]:
    """Every UTC day from the one holding `first` to the one holding `last`."""
    day, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    return [day + timedelta(days=i) for i in range((end - day).days + 1)]


def _shown(raw: bytes) -> str:
    """The raw line as storable text: bad bytes escaped, NULs made visible."""
    return raw.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def check_row(raw: bytes, row, source: SourceSpec, landing_hour: datetime,
             max_lateness: timedelta) -> ValidEvent | Rejected:
    """One source row checked against the contract, through the source's mapping if it has one."""
    if row is None:  # a JSON line
        if source.name == BUILTIN:
            return validate(raw, landing_hour, max_lateness)
        row = parse_line(raw)
    if type(row) is Rejected:
        return row
    if b"\x00" in raw or b"\\u0000" in raw:  # PostgreSQL text and jsonb cannot hold NUL
        return Rejected(("nul_character",))
    return validate_record(source.to_record(row), landing_hour, raw, max_lateness)


def load_file(conn, path: Path, landing_hour: datetime, landing_dir: Path | None = None,
              source: SourceSpec | None = None, max_lateness: timedelta = MAX_LATENESS) -> BatchResult:
    """Load one file as one transaction; never raises for bad content (a failed batch is recorded).

    `source` is the spec that reads the file; by default the built-in source, by file extension.
    """
    name = str(path.relative_to(landing_dir)) if landing_dir else str(path)
    source = source or builtin_source(format_of(path))
    digest = FileChecksum(path)  # taken as the rows are read: the file is read once
    return load_batch(conn, source, name, digest, landing_hour, lambda: open_rows(path, source.format, digest),
                      max_lateness=max_lateness, skip_loaded=True, supersede=True)


def load_batch(conn, source: SourceSpec, name: str, digest: Callable[[], str], landing_hour: datetime,
               open_source: Callable[[], tuple[list[str] | None, Iterable]],
               on_commit: Callable[[object, BatchResult], None] | None = None,
               max_lateness: timedelta = MAX_LATENESS, skip_loaded: bool = False,
               supersede: bool = False) -> BatchResult:
    """Load the rows `open_source` yields as one transaction: all of them are loaded, duplicate or
    quarantined, or, if the source cannot be read, none are and a failed batch records why.
    `digest()` is the content's checksum for the ledger, asked for once the rows are read (or before,
    to tell an unchanged file from a corrected one when a batch of the same name was loaded).
    `on_commit` runs inside the transaction (an extractor stores its watermark there).
    `skip_loaded`: a batch of the same name and digest already loaded makes this one a skip.
    `supersede`: a batch of the same name with other content (a file delivered again, corrected)
    is replaced by this one, in the same transaction (see supersede_earlier)."""
    for _ in range(DEADLOCK_ATTEMPTS):
        try:
            return _load_batch_once(conn, source, name, digest, landing_hour, open_source, on_commit,
                                    max_lateness, skip_loaded, supersede)
        # an unreadable source, a spec that does not fit, or a value the server refused that the contract let by
        except (OSError, EOFError, ValueError, csv.Error, psycopg2.DataError) as exc:
            conn.rollback()
            error = str(exc) if isinstance(exc, SourceSpecError) else f"{type(exc).__name__}: {exc}"
            return record_failure(conn, name, _digest_or_unread(digest), landing_hour, source.name, error)
        except psycopg2.errors.TransactionRollbackError as exc:  # the server undid the batch: start it again
            conn.rollback()
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return record_failure(conn, name, _digest_or_unread(digest), landing_hour, source.name,
                          f"undone by the server {DEADLOCK_ATTEMPTS} times in a row while other loaders ran ({error})")


def _digest_or_unread(digest: Callable[[], str]) -> str:
    try:
        return digest()
    except OSError:  # the file went away or cannot be read: the failure says why
        return NOT_READ


def _load_batch_once(conn, source: SourceSpec, name: str, digest: Callable[[], str], landing_hour: datetime,
                     open_source: Callable[[], tuple[list[str] | None, Iterable]],
                     on_commit: Callable[[object, BatchResult], None] | None,
                     max_lateness: timedelta, skip_loaded: bool, supersede: bool) -> BatchResult:
    with conn, conn.cursor() as cur:
        # loaders of the same file or source take turns; other files load side by side
        cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (name,))
        # loaded before under this name (also by a loader that held the lock before us): unchanged, it is skipped
        if skip_loaded and loaded_before(cur, name) and already_loaded(cur, name, digest()):
            return BatchResult(name, "skipped")
        cur.execute("select nextval('raw.ingestion_batches_batch_id_seq')")
        batch_id = cur.fetchone()[0]
        superseded = supersede_earlier(cur, name, batch_id) if supersede else []
        header, rows = open_source()
        if header is not None:
            source.check_columns(header, name)  # refuse the whole source before a row is read
        writer = ServerWriter(cur)
        try:
            read, events, quarantined = _load_rows(writer, batch_id, source, name, rows, landing_hour,
                                                   max_lateness)
        finally:
            writer.stop()  # the cursor is the transaction's again, also after a failure
        result = _write_batch(cur, batch_id, source.name, name, digest(), landing_hour, read, events, quarantined,
                              regate=bool(superseded))
        if on_commit:
            on_commit(cur, result)
    return result


def supersede_earlier(cur, name: str, batch_id: int) -> list[int]:
    """Take out what earlier loads of the file `name` left (a file delivered again replaces them): their
    events, the ids they registered and their quarantined rows. Their ledger rows stay, marked
    'superseded' by `batch_id`, so the counts of loaded batches hold each row of a file once. The event
    hours they held are noted in raw.retracted_event_hours: dbt recomputes them with the landing hour.
    An event the new version no longer holds is gone, even if another file carried a copy of it that was
    counted as a duplicate. Returns the superseded batches."""
    cur.execute("""update raw.ingestion_batches set status = 'superseded', superseded_by = %s
                   where file = %s and status = 'loaded' returning batch_id, landing_hour""", (batch_id, name))
    earlier = cur.fetchall()
    if not earlier:
        return []
    ids, hours = [b for b, _ in earlier], sorted({h for _, h in earlier})
    window = {"ids": ids, "hours": hours}
    cur.execute("""insert into raw.retracted_event_hours (landing_hour, event_hour)
                   select distinct landing_hour, date_trunc('hour', event_time, 'UTC') from raw.usage_events
                   where landing_hour = any(%(hours)s) and batch_id = any(%(ids)s)
                   on conflict do nothing""", window)
    cur.execute("delete from raw.usage_events where landing_hour = any(%(hours)s) and batch_id = any(%(ids)s)",
                window)
    cur.execute("delete from raw.event_ids where batch_id = any(%(ids)s)", window)
    cur.execute("delete from raw.quarantine where batch_id = any(%(ids)s)", window)
    cur.execute("""insert into raw.landing_hours (landing_hour, gate_status) select unnest(%(hours)s), 'pending'
                   on conflict (landing_hour) do update set gate_status = 'pending'""", window)
    return ids


def loaded_before(cur, name: str) -> bool:
    cur.execute("select 1 from raw.ingestion_batches where file = %s and status = 'loaded' limit 1", (name,))
    return cur.fetchone() is not None


def already_loaded(cur, name: str, digest: str) -> bool:
    cur.execute("select 1 from raw.ingestion_batches where file = %s and checksum = %s and status = 'loaded'",
                (name, digest))
    return cur.fetchone() is not None


def _load_rows(writer: ServerWriter, batch_id: int, source: SourceSpec, name: str, rows: Iterable,
               landing_hour: datetime, max_lateness: timedelta) -> tuple[int, NewEvents, int]:
    """Every row checked and sent on its way: (rows read, the events, rows quarantined)."""
    events = NewEvents(writer, batch_id)
    quarantine = CopyBuffer(writer, "raw.quarantine (batch_id, source, file, line_number, raw_text, reasons)")
    read = 0
    lineage = f"\t{landing_hour.isoformat()}\t{batch_id}\n".encode()
    json_rows = source.format == "jsonl"
    contract_lines = json_rows and source.name == BUILTIN
    window = event_time_window(landing_hour, max_lateness)
    hide_user = pseudonymiser()  # WAREHOUSE_PSEUDONYMISE_KEY: user ids stored as keyed hashes
    for line_number, raw, row in rows:
        read += 1
        if contract_lines and row is None:  # (a reader's Rejected, e.g. a line past the cap, goes below)
            # the common case, checked and rendered in one step: 1 us of 6.6 less per line than through
            # validate() and event_line() (bench/RESULTS.md, 2026-11-30)
            if (values := fast_row(raw, *window)) is not None:
                if hide_user:
                    values[USER_ID] = hide_user(values[USER_ID])
                events.add(values[0], values[EVENT_TIME], content_hash(raw), fast_event_line(values, lineage))
                continue
            outcome = validate_slowly(raw, landing_hour, max_lateness)
        else:
            outcome = check_row(raw, row, source, landing_hour, max_lateness)
        if type(outcome) is Rejected:
            quarantine.add("\t".join(copy_text(v) for v in (
                batch_id, source.name, name, line_number, _shown(raw), "{" + ",".join(outcome.reasons) + "}")) + "\n")
            continue
        row = outcome.row
        if hide_user:
            row = (*row[:USER_ID], hide_user(row[USER_ID]), *row[USER_ID + 1:])
        line = event_line(row, lineage, json_rows and b"\\" not in raw)
        events.add(row[0], row[EVENT_TIME], outcome.content_hash, line)
    events.flush()
    quarantined = quarantine.close()
    writer.close()
    return read, events, quarantined


def record_failure(conn, name: str, digest: str, landing_hour: datetime, source: str, error: str) -> BatchResult:
    """Record a file that could not be loaded; its other rows wait for a fixed file or spec."""
    with conn, conn.cursor() as cur:
        cur.execute("insert into raw.ingestion_batches (source, file, checksum, landing_hour, status, error,"
                    " finished_at) values (%s, %s, %s, %s, 'failed', %s, clock_timestamp()) returning batch_id",
                    (source, name, digest, landing_hour, error))
        return BatchResult(name, "failed", error=error, batch_id=cur.fetchone()[0])


def _write_batch(cur, batch_id, source, name, digest, landing_hour, read, events: NewEvents,
                 quarantined, regate: bool = False) -> BatchResult:
    """Record the batch in the ledger (the database checks that its counts add up)."""
    result = BatchResult(name, "loaded", read, events.loaded, events.duplicate, quarantined, events.conflicting,
                         batch_id=batch_id)
    cur.execute("""
        insert into raw.ingestion_batches (batch_id, source, file, checksum, landing_hour, rows_read, rows_loaded,
            rows_duplicate, rows_quarantined, rows_conflicting, finished_at, status)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp(), 'loaded')""",
                (batch_id, source, name, digest, landing_hour, result.read, result.loaded, result.duplicate,
                 result.quarantined, result.conflicting))
    if result.loaded or regate:  # new rows: the hour must pass its quality gate again before staging reads it
        cur.execute("""insert into raw.landing_hours (landing_hour, gate_status) values (%s, 'pending')
                       on conflict (landing_hour) do update set gate_status = 'pending'""", (landing_hour,))
    return result
