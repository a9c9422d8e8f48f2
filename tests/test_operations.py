"""What on-call relies on: the freshness alert and the nightly retention, on a real database."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from ingestion.schema import ensure_day_partition, ensure_schema
from orchestration.database import cursor
from orchestration.resources import WarehouseResource
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


@pytest.fixture()
def webhook():
    """A local HTTP endpoint that records every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def tick(cursor_value):
    from orchestration.defs.freshness import freshness_alert_sensor

    context = dg.build_sensor_context(cursor=cursor_value, resources={"warehouse": WarehouseResource()})
    result = freshness_alert_sensor(context)
    return context.cursor, result


def test_freshness_alert_fires_once_and_resolves(warehouse, webhook, monkeypatch, caplog):
    url, received = webhook
    monkeypatch.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES", "60")
    add_event(warehouse, "old", datetime.now(UTC) - timedelta(hours=5))

    state, result = tick(None)
    assert len(received) == 1 and received[0]["state"] == "firing"
    assert "warehouse is stale" in received[0]["summary"] and "(limit 60 min)" in received[0]["summary"]
    assert any("[freshness firing]" in r.message for r in caplog.records)  # the log line, always

    state, _ = tick(state)
    assert len(received) == 1  # still stale: no second page

    add_event(warehouse, "new", datetime.now(UTC) - timedelta(minutes=5))
    state, result = tick(state)
    assert [r["state"] for r in received] == ["firing", "resolved"]
    assert "fresh" in result.skip_message


def test_a_dead_webhook_still_logs_the_alert(warehouse, monkeypatch, caplog):
    monkeypatch.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens-here")
    tick(None)  # empty warehouse: stale
    messages = [r.message for r in caplog.records]
    assert any("no usage events in the warehouse yet" in m for m in messages)
    assert any("alert webhook http://127.0.0.1:9/*** failed" in m for m in messages)  # its path may be a secret


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
