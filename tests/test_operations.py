"""The nightly retention on a real database (alerts are in test_alerts.py)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.schema import ensure_day_partition, ensure_schema
from orchestration.database import cursor
from tests.conftest import query

pytestmark = pytest.mark.db


def add_event(dsn: str, event_id: str, event_time: datetime) -> None:
    with cursor(dsn) as cur:
        ensure_schema(cur)
        landing_hour = event_time.replace(minute=0, second=0, microsecond=0)
        ensure_day_partition(cur, event_time.astimezone(UTC).date())
        cur.execute("""insert into raw.ingestion_batches (source, file, checksum, landing_hour, status, rows_read,
                           rows_loaded) values ('landing', %s, 'x', %s, 'loaded', 1, 1) returning batch_id""",
                    (event_id + ".jsonl", landing_hour))
        batch_id = cur.fetchone()[0]
        cur.execute("""insert into raw.usage_events (event_id, event_time, org_id, provider, model, status,
                           landing_hour, batch_id)
                       values (%s, %s, 'org_a', 'openai', 'gpt-4o', 'success', %s, %s)""",
                    (event_id, event_time, landing_hour, batch_id))
        cur.execute("insert into raw.event_ids values (%s, 'x', %s)", (event_id, batch_id))


def test_retention_job_keeps_exactly_the_configured_window(warehouse, monkeypatch):
    from orchestration.definitions import defs

    now = datetime.now(UTC)
    add_event(warehouse, "40-days-old", now - timedelta(days=40))
    add_event(warehouse, "29-days-old", now - timedelta(days=29))
    with cursor(warehouse) as cur:
        cur.execute("create schema marts; create table marts.fct_usage_hourly (hour_utc timestamptz)")
        cur.execute("insert into marts.fct_usage_hourly values (%s), (%s)",
                    (now - timedelta(days=100), now - timedelta(days=80)))

    result = defs().resolve_job_def("retention_job").execute_in_process()
    assert result.success
    assert query(warehouse, "select event_id from raw.usage_events") == [("29-days-old",)]
    assert len(day_partitions_of(warehouse)) == 1  # the old day's partition was dropped, not emptied
    assert query(warehouse, "select event_id from raw.event_ids") == [("29-days-old",)]
    assert len(query(warehouse, "select * from marts.fct_usage_hourly")) == 1

    monkeypatch.setenv("WAREHOUSE_RAW_RETENTION_DAYS", "7")
    assert defs().resolve_job_def("retention_job").execute_in_process().success
    assert query(warehouse, "select count(*) from raw.usage_events") == [(0,)]
    assert day_partitions_of(warehouse) == []
    # ids are remembered for the lateness window (30 days), so a re-delivered event stays a duplicate
    assert query(warehouse, "select event_id from raw.event_ids") == [("29-days-old",)]


def day_partitions_of(dsn: str) -> list:
    return query(dsn, "select inhrelid::regclass::text from pg_inherits where inhparent = 'raw.usage_events'::regclass")


def test_events_older_than_the_raw_window_are_quarantined_not_rolled_up(warehouse, tmp_path, monkeypatch):
    """With 7 days of raw events kept, a 10-day-late event could not be rolled up with its hour's rows
    (they are gone), so it is refused as too late instead of replacing that hour's rollup."""
    from tests.conftest import run_hours

    monkeypatch.setenv("WAREHOUSE_RAW_RETENTION_DAYS", "7")
    hour = datetime(2026, 3, 17, 12, tzinfo=UTC)
    folder = tmp_path / "landing" / "dt=2026-03-17" / "hour=12"
    folder.mkdir(parents=True)
    base = {"org_id": "org_a", "provider": "openai", "model": "gpt-4o", "status": "success"}
    (folder / "a.jsonl").write_text("\n".join(json.dumps({**base, "event_id": e, "event_time": t.isoformat()})
                                              for e, t in [("fresh", hour + timedelta(minutes=5)),
                                                           ("six-days-late", hour - timedelta(days=6)),
                                                           ("ten-days-late", hour - timedelta(days=10))]) + "\n")
    assert run_hours(hour, hour).success
    assert query(warehouse, "select event_id from raw.usage_events order by 1") == [("fresh",), ("six-days-late",)]
    assert query(warehouse, "select reasons from raw.quarantine") == [(["event_time:too_late"],)]
