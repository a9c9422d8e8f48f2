"""Files loaded side by side by several workers: the same warehouse as one after another, and what
loaders running at once do to each other (a deadlock, the same file twice, a reader)."""

import gzip
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from ingestion.loader import load_file
from ingestion.parallel import load_hours
from ingestion.readers import hour_folder
from ingestion.schema import ensure_schema
from ingestion.validation import Rejected, validate
from samples.synthetic import generate
from tests.conftest import TEST_DATABASE, fresh_database, query

pytestmark = pytest.mark.db

START = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = [START + timedelta(hours=h) for h in range(48)]
# what a row holds apart from its lineage (which batch and landing hour brought it: those follow the
# order the files were loaded in)
CONTENT = """select event_id, event_time, org_id, user_id, model, status, input_tokens, output_tokens,
                    latency_ms, metadata::text from raw.usage_events order by event_id"""


def load(dsn, landing, workers):
    return list(load_hours(dsn, landing, HOURS, workers=workers))


def test_two_workers_build_the_same_raw_layer_as_one(server_dsn, tmp_path):
    landing = tmp_path / "landing"
    manifest = generate(landing, START, days=2, events_per_day=3_000, seed=11)
    # an event delivered again, with different content, in a file loaded later (hour 30 starts long after hour 2)
    lines = [line for path in sorted(landing.glob("dt=*/hour=*/*.jsonl.gz"))
             for line in gzip.decompress(path.read_bytes()).splitlines()]
    ids = Counter(event_id(line) for line in lines)
    first_hour = gzip.decompress(next(hour_folder(landing, HOURS[2]).glob("*.jsonl.gz")).read_bytes()).splitlines()
    kept = next(json.loads(line) for line in first_hour
                if type(validate(line, HOURS[2])) is not Rejected and ids[event_id(line)] == 1)
    clash = {**kept, "model": "gpt-4o-mini" if kept["model"] != "gpt-4o-mini" else "gpt-4o"}
    (hour_folder(landing, HOURS[30]) / "redelivered.jsonl").write_text(json.dumps(clash) + "\n")

    results = {}
    for workers in (1, 2):
        dsn = fresh_database(server_dsn, f"{TEST_DATABASE}_w{workers}")
        batches = load(dsn, landing, workers)
        assert [b.status for b in batches] == ["loaded"] * 49
        results[workers] = (batches, query(dsn, CONTENT), query(dsn, """
            select file, line_number, reasons from raw.quarantine order by file, line_number"""))

    for workers, (batches, rows, quarantine) in results.items():
        totals = {k: sum(getattr(b, k) for b in batches) for k in ("read", "loaded", "duplicate", "quarantined",
                                                                   "conflicting")}
        # against the generator's own count of what it wrote (the clash line is one more read, a duplicate)
        assert totals == {"read": manifest.lines + 1, "loaded": manifest.events,
                          "duplicate": manifest.planted["duplicate"] + 1,
                          "quarantined": manifest.lines - manifest.events - manifest.planted["duplicate"],
                          "conflicting": 1}, workers
        assert len(rows) == len({r[0] for r in rows}) == manifest.events
        assert len(quarantine) == totals["quarantined"]
    (_, one_rows, one_quarantine), (_, two_rows, two_quarantine) = results[1], results[2]
    assert two_quarantine == one_quarantine
    assert two_rows == one_rows  # the clashing event too: the copy loaded first is kept in both
    assert [r[4] for r in two_rows if r[0] == kept["event_id"]] == [kept["model"]]


def event_id(line: bytes) -> str | None:
    try:
        return json.loads(line).get("event_id")
    except (ValueError, AttributeError):
        return None


def _landed(tmp_path, name, lines):
    folder = hour_folder(tmp_path, HOURS[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / name


def _event(event_id, minute=1, day=START):
    return {"event_id": event_id, "event_time": (day + timedelta(minutes=minute)).isoformat(), "org_id": "org_a",
            "provider": "openai", "model": "gpt-4o", "status": "success", "input_tokens": 10, "output_tokens": 2}


def _waiting_on_a_lock(dsn, but_not: int) -> bool:
    return bool(query(dsn, """select 1 from pg_stat_activity where wait_event_type = 'Lock' and pid <> %s
                              and datname = current_database()""", (but_not,)))


def _in_thread(target):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", target()), daemon=True)
    thread.start()
    return thread, outcome


def test_a_batch_undone_by_a_deadlock_starts_again_and_counts_what_the_other_loader_kept(warehouse, tmp_path):
    dsn = warehouse
    # the loader under test finds the deadlock (the other waits 20 s before it looks), with time to set it up
    query(dsn, "alter database warehouse_test set deadlock_timeout = '3s'; select 1")
    _landed(tmp_path, "warmup.jsonl", [_event("warmup")])
    load(dsn, tmp_path, 1)  # schema and the day's partition exist
    path = _landed(tmp_path, "file.jsonl", [_event("x"), _event("y", minute=2)])

    other = psycopg2.connect(dsn)  # another loader, in the middle of its batch: it has registered y
    cur = other.cursor()
    cur.execute("set deadlock_timeout = '20s'")  # the loader under test is the one that finds the deadlock
    cur.execute("select pg_backend_pid()")
    other_pid = cur.fetchone()[0]
    cur.execute("insert into raw.event_ids values ('y', 'other', 0)")
    conn = psycopg2.connect(dsn)
    thread, outcome = _in_thread(lambda: load_file(conn, path, HOURS[0], tmp_path))
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock(dsn, other_pid):  # the loader registered x and waits for y
        assert time.monotonic() < deadline, "the loader never waited for the other loader's id"
        time.sleep(0.05)
    cur.execute("insert into raw.event_ids values ('x', 'other', 0)")  # now each waits for the other
    other.commit()
    thread.join(60)
    assert not thread.is_alive()
    batch = outcome["result"]
    assert (batch.status, batch.read, batch.loaded, batch.duplicate, batch.conflicting) == ("loaded", 2, 0, 2, 2)
    assert query(dsn, "select count(*) from raw.usage_events where event_id in ('x', 'y')") == [(0,)]
    name = str(path.relative_to(tmp_path))
    assert query(dsn, "select count(*) from raw.ingestion_batches where file = %s", (name,)) == [(1,)]  # not two
    other.close()
    conn.close()


def test_the_same_file_loaded_by_two_loaders_at_once_loads_once(warehouse, tmp_path):
    dsn = warehouse
    path = _landed(tmp_path, "file.jsonl", [_event(f"e{i}", minute=i % 60) for i in range(3_000)])
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        ensure_schema(cur)
    conns = [psycopg2.connect(dsn) for _ in range(2)]
    runs = [_in_thread(lambda c=c: load_file(c, path, HOURS[0], tmp_path)) for c in conns]
    for thread, _ in runs:
        thread.join(60)
    assert sorted(outcome["result"].status for _, outcome in runs) == ["loaded", "skipped"]
    assert query(dsn, "select count(*), count(distinct event_id) from raw.usage_events") == [(3_000, 3_000)]
    assert query(dsn, "select count(*) from raw.ingestion_batches") == [(1,)]
    for c in [conn, *conns]:
        c.close()


def test_a_new_day_partition_does_not_wait_for_readers_of_the_raw_layer(warehouse, tmp_path):
    dsn = warehouse
    _landed(tmp_path, "first.jsonl", [_event("first")])
    load(dsn, tmp_path, 1)
    reader = psycopg2.connect(dsn)  # a dbt model or a BI query, reading in an open transaction
    reader.cursor().execute("select count(*) from raw.usage_events")
    # events of the day before: a partition that does not exist yet
    path = _landed(tmp_path, "late.jsonl", [_event("late", day=START - timedelta(days=1))])
    conn = psycopg2.connect(dsn)
    thread, outcome = _in_thread(lambda: load_file(conn, path, HOURS[0], tmp_path))
    thread.join(30)
    blocked = thread.is_alive()
    reader.rollback()
    thread.join(30)
    assert not blocked, "creating the day's partition waited for a reader's transaction"
    assert outcome["result"].loaded == 1
    assert query(dsn, "select to_regclass('raw.usage_events_p20260301') is not null") == [(True,)]
    reader.close()
    conn.close()
