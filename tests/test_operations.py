"""The nightly retention on a real database (alerts are in test_alerts.py)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.schema import ensure_day_partition, ensure_schema
from orchestration.database import cursor
from tests.conftest import query

pytestmark = [pytest.mark.db, pytest.mark.one_server]  # CI: the embedded server only (see .ci/run)


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


def test_raw_days_past_the_window_start_retention_once_no_run_reads_raw(warehouse):
    """An import of old files leaves raw days past the window: the sensor starts retention_job for them, but
    not while a run that reads raw (the import's own) is under way, and not again once they are gone."""
    import uuid

    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.automation import expired_raw_days_sensor
    from orchestration.resources import WarehouseResource

    instance = dg.DagsterInstance.ephemeral()

    def tick():
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": WarehouseResource()})
        return expired_raw_days_sensor.evaluate_tick(context)

    assert tick().skip_message == "raw holds no day older than 30 days"  # not even a raw table yet
    now = datetime.now(UTC)
    add_event(warehouse, "29-days-old", now - timedelta(days=29))
    assert tick().skip_message == "raw holds no day older than 30 days"
    old = [now - timedelta(days=d) for d in (45, 40)]
    for event_time in old:
        add_event(warehouse, f"imported-{event_time:%m%d}", event_time)
    importing = instance.add_run(dg.DagsterRun(job_name="hourly_usage_job", run_id=str(uuid.uuid4()),
                                               status=dg.DagsterRunStatus.STARTED))
    assert tick().skip_message == "2 expired raw days wait for hourly_usage_job to finish"

    instance.delete_run(importing.run_id)
    [request] = tick().run_requests
    days = f"{old[0]:%Y-%m-%d} to {old[1]:%Y-%m-%d}"
    assert request.tags["warehouse/reason"] == f"raw holds expired days {days}"
    assert expired_raw_days_sensor.job_name == "retention_job"
    assert defs().resolve_job_def("retention_job").execute_in_process(instance=instance).success
    assert query(warehouse, "select event_id from raw.usage_events") == [("29-days-old",)]
    assert tick().skip_message == "raw holds no day older than 30 days"


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


def test_warehouse_load_imports_old_files_with_their_own_lateness_window(warehouse, server_dsn, tmp_path,
                                                                         monkeypatch, capsys):
    """`warehouse load` runs ingest, gates, dbt, publication and the reports for the hours given, recorded in
    Dagster; an import of a file whose events go back 60 days keeps them with --max-lateness-days, while the
    default window quarantines the older ones as too late."""
    import gzip

    from orchestration.cli import main
    from orchestration.database import sqlalchemy_url
    from tests.conftest import TEST_DATABASE, fresh_database

    monkeypatch.setenv("DAGSTER_PG_URL", sqlalchemy_url(fresh_database(server_dsn, TEST_DATABASE + "_dagster")))
    monkeypatch.setenv("WAREHOUSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "state" / "dagster_home"))  # the command sets it; undone after
    landing = tmp_path / "landing"
    base = {"org_id": "org_a", "provider": "openai", "model": "gpt-4o", "status": "success", "input_tokens": 10,
            "output_tokens": 5, "latency_ms": 100}

    def deliver(hour: datetime, prefix: str) -> None:
        folder = landing / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True)
        events = [{**base, "event_id": f"{prefix}-{d}", "event_time": (hour - timedelta(days=d, hours=1)).isoformat()}
                  for d in range(0, 60, 6)]  # ten events, from an hour before landing to 54 days before
        with gzip.open(folder / "trace.jsonl.gz", "wt") as f:
            f.write("\n".join(json.dumps(e) for e in events) + "\n")

    imported, later = datetime(2026, 6, 10, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC)
    deliver(imported, "old")
    assert main(["load", "--from", "2026-06-10T00", "--max-lateness-days", "90"]) == 0
    assert "events up to 90 days older than their landing hour are kept" in capsys.readouterr().out
    assert query(warehouse, "select count(*) from raw.usage_events where event_id like 'old-%'") == [(10,)]
    assert query(warehouse, "select sum(requests) from marts.fct_usage_daily") == [(10,)]
    assert query(warehouse, "select count(distinct day_utc) from marts.fct_usage_daily") == [(10,)]

    deliver(later, "new")  # the same shape, loaded with the default window (30 days within the raw retention)
    assert main(["load", "--from", "2026-06-11T00"]) == 0
    assert query(warehouse, "select count(*) from raw.usage_events where event_id like 'new-%'") == [(5,)]
    assert query(warehouse, "select count(*), min(reasons[1]) from raw.quarantine") == [(5, "event_time:too_late")]

    assert main(["load", "--from", "2025-12-31T23"]) == 2
    assert "is before WAREHOUSE_HISTORY_START (2026-01-01): set WAREHOUSE_HISTORY_START=2025-12-31" in \
        capsys.readouterr().err
    import dagster as dg

    with dg.DagsterInstance.get() as instance:  # the runs are in the UI's storage
        jobs = [r.job_name for r in instance.get_runs()]
    assert jobs.count("hourly_usage_job") == 2 and jobs.count("reports_job") == 2
