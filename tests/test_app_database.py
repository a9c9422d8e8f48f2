"""Incremental extraction from an application's own usage table, through the real loader."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestion.landing import load_hour
from ingestion.sources import parse_spec
from orchestration.database import connect, cursor, recreate_database
from tests.conftest import TEST_DATABASE, query

pytestmark = pytest.mark.db

HOUR = datetime(2026, 3, 7, 12, tzinfo=UTC)
SPEC = {"name": "app", "format": "postgres", "dsn_env": "APP_DATABASE_URL", "table": "public.llm_calls",
        "watermark": "created_at", "lookback": 60,
        "columns": {"event_id": "id", "event_time": "created_at", "org_id": "tenant",
                    "latency_ms": {"column": "duration_s", "unit": "s"}},
        "defaults": {"provider": "openai", "status": "success"}}


@pytest.fixture()
def app_db(server_dsn, monkeypatch) -> str:
    dsn = recreate_database(server_dsn, TEST_DATABASE + "_app")
    with cursor(dsn) as cur:
        cur.execute("""create table public.llm_calls (id bigserial primary key, created_at timestamptz not null,
                       tenant text, model text, input_tokens int, duration_s numeric, feature text)""")
    monkeypatch.setenv("APP_DATABASE_URL", dsn)
    return dsn


def insert_calls(dsn, times: list[datetime], tokens: int = 10) -> None:
    with cursor(dsn) as cur:
        for t in times:
            cur.execute("insert into public.llm_calls (created_at, tenant, model, input_tokens, duration_s, feature)"
                        " values (%s, 'acme', 'gpt-4o', %s, 1.25, 'search')", (t, tokens))


def run_hour(dsn, hour, spec=SPEC):
    conn = connect(dsn)
    try:
        return load_hour(conn, Path("no-landing-files"), hour, [parse_spec(spec)])[0]
    finally:
        conn.close()


def test_rows_are_taken_once_hour_by_hour_resuming_at_the_watermark(warehouse, app_db):
    insert_calls(app_db, [HOUR + timedelta(minutes=m) for m in (5, 30, 59)])
    insert_calls(app_db, [HOUR + timedelta(hours=1, minutes=10)])  # belongs to the next hour's run

    first = run_hour(warehouse, HOUR)
    assert (first.status, first.read, first.loaded) == ("loaded", 3, 3)
    assert query(warehouse, "select watermark from raw.extract_watermarks") == [(HOUR + timedelta(minutes=59),)]
    rerun = run_hour(warehouse, HOUR)  # reads again from the watermark minus the lookback
    assert (rerun.read, rerun.loaded, rerun.duplicate) == (1, 0, 1)

    # a row that committed late, inside the lookback, and new rows: re-read rows are duplicates, not reloaded
    insert_calls(app_db, [HOUR + timedelta(minutes=58, seconds=30), HOUR + timedelta(hours=1, minutes=20)])
    second = run_hour(warehouse, HOUR + timedelta(hours=1))
    assert (second.loaded, second.duplicate) == (3, 1)  # 58:30, 1:10 and 1:20 new; 59 read again
    assert second.read == second.loaded + second.duplicate + second.quarantined

    events = query(warehouse, "select event_id, event_time, org_id, provider, latency_ms, input_tokens, metadata,"
                              " landing_hour from raw.usage_events order by event_time")
    source = query(app_db, "select id::text, created_at, tenant, input_tokens, feature from public.llm_calls"
                           " order by created_at")
    assert [(e[0], e[1], e[2], e[5]) for e in events] == [(s[0], s[1], s[2], s[3]) for s in source]
    assert {(e[3], e[4]) for e in events} == {("openai", 1250.0)}  # constant default, seconds -> ms
    assert {str(e[6]) for e in events} == {str({"feature": "search"})}  # columns the spec does not map
    next_hour = HOUR + timedelta(hours=1)
    assert [e[7] for e in events] == [HOUR, HOUR, next_hour, HOUR, next_hour, next_hour]  # when it was extracted


def test_missing_url_and_bad_watermark_fail_the_batch_with_what_to_do(warehouse, app_db, monkeypatch):
    bad = run_hour(warehouse, HOUR, {**SPEC, "watermark": "tenant"})
    assert bad.status == "failed"
    assert bad.error == ("source 'app': watermark 'tenant' is not a timestamp column of public.llm_calls; "
                         "name a timestamp column that only grows, such as created_at")
    monkeypatch.delenv("APP_DATABASE_URL")
    unset = run_hour(warehouse, HOUR)
    assert unset.status == "failed" and "environment variable APP_DATABASE_URL (its dsn_env) is not set" in unset.error
    assert query(warehouse, "select status, count(*) from raw.ingestion_batches group by 1") == [("failed", 2)]
