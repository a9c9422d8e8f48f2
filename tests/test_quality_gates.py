"""Each gate, fed its own defect: the run stops at the right step, the published marts (what BI reads)
do not change by a byte, and audit.check_results says why. A WARN lets the run through, recorded.

One day of generated logs is loaded and published once; each test then lands a new hour, plants its
defect (in the rows, in a reference table, or as a trigger that corrupts what dbt writes), runs that
hour, and removes the defect again.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ingestion.landing import load_hour
from orchestration.runs import materialize_reference
from samples.synthetic import Defects, generate, landing_path
from tests.conftest import query, run_hours

pytestmark = [pytest.mark.db, pytest.mark.one_server]  # CI: the embedded server only (see .ci/run)

START = datetime(2026, 5, 4, tzinfo=UTC)
NEXT_HOUR = iter(START + timedelta(days=1, hours=h) for h in range(100))  # one fresh hour per test


@pytest.fixture(scope="module")
def published(server_dsn, dbt_manifest, tmp_path_factory):
    from orchestration.database import sqlalchemy_url
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    # the `warehouse` commands record their runs in a Dagster storage of the test's own
    mp.setenv("DAGSTER_PG_URL", sqlalchemy_url(fresh_database(server_dsn, TEST_DATABASE + "_dagster")))
    state = tmp_path_factory.mktemp("state")
    mp.setenv("WAREHOUSE_STATE_DIR", str(state))
    mp.setenv("DAGSTER_HOME", str(state / "dagster_home"))  # what the commands set, undone with the module
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    mp.setenv("WAREHOUSE_DATA_DOCS_DIR", str(tmp_path_factory.mktemp("data_docs")))
    generate(root, START, 1, 1200, seed=3, defects=Defects(0, 0, 0, 0))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(hours=23), instance).success
    yield dsn, root
    mp.undo()


def published_marts(dsn: str) -> dict[str, str]:
    """A digest of every row of every table BI reads (schema marts), built_at included."""
    tables = [t for (t,) in query(dsn, "select table_name from information_schema.tables "
                                       "where table_schema = 'marts' order by 1")]
    return {t: query(dsn, f"select count(*), md5(coalesce(string_agg(r::text, '|' order by r::text), '')) "
                          f"from marts.{t} as r")[0] for t in tables}


def land(root, hour: datetime, count: int = 20, **changes) -> list[dict]:
    """A new hour's file: `count` events copied from the first generated hour, with new ids and times."""
    template = [json.loads(line) for line in gzip.open(landing_path(root, START), "rt")]
    rows = [{**template[i % len(template)], "event_id": f"{hour:%d%H}-{i}",
             "event_time": (hour + timedelta(minutes=i % 60)).isoformat(), **changes} for i in range(count)]
    path = landing_path(root, hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def load_only(dsn: str, root, hour: datetime) -> None:
    """Ingest an hour outside Dagster, so a test can tamper with its raw rows before the run checks them."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        assert all(b.status == "loaded" for b in load_hour(conn, root, hour))
    finally:
        conn.close()


def execute(dsn: str, sql: str, params=()) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
    finally:
        conn.close()


def failed_steps(result) -> list[str]:
    return [e.step_key for e in result.get_step_failure_events()]


def last_result(dsn: str, check: str) -> tuple:
    return query(dsn, """select success, severity, summary, observed, partition_key from audit.check_results
                         where check_name = %s order by result_id desc limit 1""", (check,))[0]


def published_steps(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


RAW_GATE = "raw__usage_events_raw_usage_events_suite"
LEDGER_GATE = "raw__usage_events_ingestion_ledger_suite"


def test_a_null_org_stops_the_run_at_the_raw_suite(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    load_only(dsn, root, hour)
    before = published_marts(dsn)
    # the loader never writes a null org (the contract requires one and the column is NOT NULL);
    # the suite is the second line: a migration that loosened the column must not let one through
    execute(dsn, "alter table raw.usage_events alter column org_id drop not null")
    execute(dsn, "update raw.usage_events set org_id = null where event_id = %s", (f"{hour:%d%H}-3",))
    try:
        result = run_hours(hour, hour)
    finally:
        execute(dsn, "delete from raw.usage_events where org_id is null")
        execute(dsn, "alter table raw.usage_events alter column org_id set not null")

    assert not result.success and failed_steps(result) == [RAW_GATE]
    assert "marts/fct_usage_hourly" not in published_steps(result)  # dbt never ran
    assert published_marts(dsn) == before
    success, severity, summary, _, partition = last_result(dsn, "raw_usage_events_suite")
    assert (success, severity, partition) == (False, "error", f"{hour:%Y-%m-%d-%H}:00")
    assert "expect_column_values_to_not_be_null on org_id: 1 rows" in summary


def test_a_negative_latency_stops_the_run_and_names_the_value(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    load_only(dsn, root, hour)
    execute(dsn, "update raw.usage_events set latency_ms = -250 where event_id = %s", (f"{hour:%d%H}-5",))
    before = published_marts(dsn)

    result = run_hours(hour, hour)

    assert not result.success and failed_steps(result) == [RAW_GATE]
    assert published_marts(dsn) == before
    success, severity, summary, observed, _ = last_result(dsn, "raw_usage_events_suite")
    assert (success, severity) == (False, "error")
    assert "on latency_ms: 1 rows, e.g. [-250.0]" in summary and "To fix:" in summary
    [failure] = [f for f in observed["failed"] if f["column"] == "latency_ms"]
    assert failure["sample"] == [-250.0]
    # the hour stays out of staging, so no later run can publish it either
    assert query(dsn, "select gate_status from raw.landing_hours where landing_hour = %s", (hour,)) == [("failed",)]


def test_a_duplicate_id_that_slipped_past_the_loader_stops_the_run(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    load_only(dsn, root, hour)
    # a second copy of one event, as a loader bug that bypassed the id registry would write it
    execute(dsn, """insert into raw.usage_events select * from raw.usage_events where event_id = %s
                 """, (f"{hour:%d%H}-7",))
    before = published_marts(dsn)

    result = run_hours(hour, hour)

    # both raw-level suites see it: a repeated id, and one row more in raw than the ledger loaded
    assert not result.success and sorted(failed_steps(result)) == [LEDGER_GATE, RAW_GATE]
    assert published_marts(dsn) == before
    assert "on loaded_rows_not_in_raw: 1 rows, e.g. [-1]" in last_result(dsn, "ingestion_ledger_suite")[2]
    summary = last_result(dsn, "raw_usage_events_suite")[2]
    assert f"expect_column_values_to_be_unique on event_id: 2 rows, e.g. ['{hour:%d%H}-7', '{hour:%d%H}-7']" in summary


def test_a_staged_event_with_more_cache_than_prompt_is_stopped_before_publication(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    load_only(dsn, root, hour)
    # the loader quarantines such a row (tokens:cache_exceeds_input); one written past it is caught
    # in staging, where the uncached rest of the prompt would come out negative
    execute(dsn, """update raw.usage_events set cached_input_tokens = 0, cache_write_tokens = input_tokens + 500
                    where event_id = %s""", (f"{hour:%d%H}-2",))
    before = published_marts(dsn)

    result = run_hours(hour, hour)

    assert not result.success
    assert "staging__stg_usage__events_stg_usage__events_suite" in failed_steps(result)
    assert "marts/publication" not in published_steps(result)
    assert published_marts(dsn) == before
    success, severity, summary, _, _ = last_result(dsn, "stg_usage__events_suite")
    assert (success, severity) == (False, "error")
    assert "on uncached_input_tokens: 1 rows, e.g. [-500]" in summary


def test_a_defect_only_the_staging_suite_sees_skips_publication(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    load_only(dsn, root, hour)
    # more reasoning tokens than output tokens, written past the loader (which quarantines it): the raw
    # suite bounds each column alone, and the event is priced the same as if the tokens were split right
    # (output and reasoning cost the same), so no mart check and no dbt test can tell; only staging's
    # non_reasoning_output_tokens >= 0 does
    event_id = f"{hour:%d%H}-4"
    execute(dsn, "update raw.usage_events set reasoning_tokens = output_tokens + 7 where event_id = %s", (event_id,))
    before = published_marts(dsn)
    instance = dg.DagsterInstance.ephemeral()

    result = run_hours(hour, hour, instance)

    assert not result.success
    assert failed_steps(result) == ["staging__stg_usage__events_stg_usage__events_suite"]
    errors = {c.check_name for c in result.get_asset_check_evaluations()
              if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR}
    assert errors == {"stg_usage__events_suite"}  # no mart suite and no dbt test caught it
    assert "marts/fct_usage_hourly" in published_steps(result)  # dbt built the marts in schema build ...
    assert "marts/publication" not in published_steps(result)  # ... and publication was skipped
    # what the run's log in the UI says of it
    assert any(entry.step_key == "marts__publication" and "Not executing" in entry.user_message
               and "stg_usage__events_suite" in entry.user_message for entry in instance.all_logs(result.run_id))
    assert published_marts(dsn) == before
    success, severity, summary, _, partition = last_result(dsn, "stg_usage__events_suite")
    assert (success, severity, partition) == (False, "error", f"{hour:%Y-%m-%d-%H}:00")
    assert "on non_reasoning_output_tokens: 1 rows, e.g. [-7]" in summary
    # the hour is taken back out of staging: no later run (the next hour's daily rollup) can publish the row
    assert query(dsn, "select gate_status from raw.landing_hours where landing_hour = %s", (hour,)) == [("failed",)]
    next_hour = next(NEXT_HOUR)
    land(root, next_hour)
    assert run_hours(next_hour, next_hour).success
    assert query(dsn, "select count(*) from marts.fct_event_costs where event_id = %s", (event_id,)) == [(0,)]


def release(hour: datetime, *options: str) -> int:
    """`warehouse release HOUR ...`, the command on-call runs, on the test's warehouse."""
    from orchestration.cli import main

    return main(["release", f"{hour:%Y-%m-%dT%H}", *options])


def test_a_row_past_the_loader_is_released_to_the_quarantine_and_the_hour_goes_through(published, capsys):
    dsn, root = published
    hour = next(NEXT_HOUR)
    rows = land(root, hour)
    load_only(dsn, root, hour)
    bad = f"{hour:%d%H}-6"
    execute(dsn, "update raw.usage_events set latency_ms = -250 where event_id = %s", (bad,))
    assert not run_hours(hour, hour).success  # the raw suite stops it, as above
    summary = last_result(dsn, "raw_usage_events_suite")[2]
    assert f"`warehouse release {hour:%Y-%m-%d-%H}:00`" in summary

    assert release(hour, "--by", "oncall", "--note", "clock bug in the gateway") == 0  # releases, then reruns

    out = capsys.readouterr().out
    assert f"{hour:%Y-%m-%d %H}:00 UTC: 1 rows to raw.quarantine, 0 extra copies dropped " \
           "(latency_ms:out_of_range 1)" in out and "SUCCESS" in out
    assert query(dsn, "select reasons, line_number, raw_text::jsonb->>'event_id' from raw.quarantine "
                      "where batch_id in (select batch_id from raw.ingestion_batches where landing_hour = %s)",
                 (hour,)) == [(["released:latency_ms:out_of_range"], None, bad)]
    assert query(dsn, "select rows_read, rows_loaded, rows_quarantined from raw.ingestion_batches "
                      "where landing_hour = %s and status = 'loaded'", (hour,)) == [(20, 19, 1)]
    assert query(dsn, "select released_by, note, rows_released, reasons from audit.releases where landing_hour = %s",
                 (hour,)) == [("oncall", "clock bug in the gateway", 1, {"latency_ms:out_of_range": 1})]
    assert query(dsn, "select gate_status from raw.landing_hours where landing_hour = %s", (hour,)) == [("passed",)]
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [
        (len(rows) - 1,)]
    # a corrected re-delivery of the event loads: its id was freed
    assert query(dsn, "select count(*) from raw.event_ids where event_id = %s", (bad,)) == [(0,)]


def test_a_corrected_file_delivered_again_replaces_the_bad_rows_and_the_hour_goes_through(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    rows = land(root, hour)
    load_only(dsn, root, hour)
    execute(dsn, "update raw.usage_events set latency_ms = -250 where event_id = %s", (f"{hour:%d%H}-6",))
    assert not run_hours(hour, hour).success
    before = published_marts(dsn)

    # the source is fixed and the file delivered again under the same name, that event dropped
    fixed = [r for r in rows if r["event_id"] != f"{hour:%d%H}-6"]
    with gzip.open(landing_path(root, hour), "wt") as f:
        f.write("\n".join(json.dumps(r) for r in fixed) + "\n")
    result = run_hours(hour, hour)

    assert result.success and published_marts(dsn) != before
    assert query(dsn, "select status, rows_read, rows_loaded, rows_duplicate from raw.ingestion_batches "
                      "where landing_hour = %s order by batch_id", (hour,)) == [
        ("superseded", 20, 20, 0), ("loaded", 19, 19, 0)]
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [(19,)]


def test_a_file_with_too_many_quarantined_rows_stops_the_run_at_the_ledger(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    rows = land(root, hour, count=200)  # files under 100 rows are not judged by their share
    path = landing_path(root, hour)
    broken = [json.dumps({**r, "input_tokens": -1}) if i % 4 == 0 else json.dumps(r) for i, r in enumerate(rows)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(broken) + "\n")
    before = published_marts(dsn)

    result = run_hours(hour, hour)

    assert not result.success and failed_steps(result) == [LEDGER_GATE]
    assert published_marts(dsn) == before
    success, severity, summary, _, _ = last_result(dsn, "ingestion_ledger_suite")
    assert (success, severity) == (False, "error")
    assert "on quarantine_share: 1 rows, e.g. [0.25]" in summary
    # the message names the file, the setting and the command that releases it
    name = str(path.relative_to(root))
    assert f"files over WAREHOUSE_MAX_QUARANTINE_SHARE=0.05: {name} (50 of 200 rows quarantined, 25%)" in summary
    assert f"`warehouse release {hour:%Y-%m-%d-%H}:00`" in summary

    # an operator who read the reasons accepts the share: the file's 150 good rows go through
    assert release(hour, "--no-run", "--by", "oncall", "--note", "known bad export") == 0
    assert run_hours(hour, hour).success
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [(150,)]
    assert query(dsn, "select released_by, note, rows_released, files_accepted from audit.releases "
                      "where landing_hour = %s", (hour,)) == [("oncall", "known bad export", 0, [name])]


def test_an_hourly_rollup_that_loses_rows_stops_at_dbt_and_a_fixed_rerun_publishes(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    rows = land(root, hour)
    before = published_marts(dsn)
    # a rollup that drops one org's rows on the way into the table, as a broken filter or join would
    execute(dsn, """create function lose_acme() returns trigger language plpgsql as $$
                  begin if new.org_id = 'org_acme' then return null; end if; return new; end $$;
                  create trigger lose_acme before insert on build.fct_usage_hourly
                  for each row execute function lose_acme()""")
    try:
        result = run_hours(hour, hour)
    finally:
        execute(dsn, "drop trigger lose_acme on build.fct_usage_hourly; drop function lose_acme()")

    assert not result.success and failed_steps(result) == ["usage_marts"]
    assert "marts/publication" not in published_steps(result)
    assert published_marts(dsn) == before
    success, severity, summary, observed, _ = last_result(dsn, "assert_hourly_rollup_equals_events")
    acme = sum(r["org_id"] == "org_acme" for r in rows)
    assert (success, severity, observed["failures"]) == (False, "error", 1)
    assert observed["sample"] == [{"hour_utc": str(hour), "org_id": "org_acme", "event_requests": acme,
                                   "rollup_requests": None, "event_errors": observed["sample"][0]["event_errors"],
                                   "rollup_errors": None, "event_tokens": observed["sample"][0]["event_tokens"],
                                   "rollup_tokens": None}]
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "assert_hourly_rollup_equals_events"]
    assert not check.passed

    # with the defect gone, the same hour goes through and every event of it is published
    result = run_hours(hour, hour)
    assert result.success
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [(len(rows),)]


def test_a_price_join_that_doubles_rows_stops_at_dbt(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    before = published_marts(dsn)
    # a second, overlapping catalog row for every price in force: each event now matches two prices
    execute(dsn, """create temp table doubled as select * from reference.catalog_prices;
                  update doubled set price_id = 'dup-' || price_id;
                  insert into reference.catalog_prices select * from doubled""")
    try:
        result = run_hours(hour, hour)
    finally:
        execute(dsn, "delete from reference.catalog_prices where price_id like 'dup-%'")

    assert not result.success and failed_steps(result) == ["usage_marts"]
    assert published_marts(dsn) == before
    success, severity, summary, observed, _ = last_result(dsn, "unique_fct_event_costs_event_id")
    assert (success, severity) == (False, "error")
    assert observed["failures"] > 0 and observed["sample"][0]["n_records"] == 2
    # dbt stopped there: nothing built on the doubled events, in schema build either
    assert "marts/fct_event_costs" in published_steps(result)
    assert not {"marts/fct_cost_hourly", "marts/fct_cost_daily"} & published_steps(result)


def test_a_mart_suite_failure_keeps_the_rows_out_of_the_published_marts(published):
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    before = published_marts(dsn)
    # latency sums in ms written as nanoseconds: no dbt test looks at them, the mart suite does
    execute(dsn, """create function micro() returns trigger language plpgsql as $$
                  begin new.latency_ms_sum := new.latency_ms_sum * 1000000; return new; end $$;
                  create trigger micro before insert on build.fct_usage_hourly
                  for each row execute function micro()""")
    try:
        result = run_hours(hour, hour)
    finally:
        execute(dsn, "drop trigger micro on build.fct_usage_hourly; drop function micro()")

    assert not result.success
    assert failed_steps(result) == ["marts__fct_usage_hourly_fct_usage_hourly_suite"]
    assert "marts/fct_usage_hourly" in published_steps(result)  # dbt built it in schema build ...
    assert "marts/publication" not in published_steps(result)  # ... and it was never published
    assert published_marts(dsn) == before
    success, severity, summary, observed, _ = last_result(dsn, "fct_usage_hourly_suite")
    assert (success, severity) == (False, "error") and "on mean_latency_ms" in summary
    assert observed["docs"].endswith(".html")
    assert "Failed" in open(observed["docs"]).read()  # the Data Docs page of this very validation

    # the next run, for another hour, first puts back what the stopped run left in schema build:
    # the bad hour never reaches BI through a later publication
    other = next(NEXT_HOUR)
    land(root, other)
    assert run_hours(other, other).success
    assert query(dsn, "select count(*) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [(0,)]
    assert query(dsn, "select count(*) from build.fct_usage_hourly where hour_utc = %s", (hour,)) == [(0,)]
    assert query(dsn, "select count(*) > 0 from marts.fct_usage_hourly where hour_utc = %s", (other,)) == [(True,)]


def test_a_negative_cost_is_an_error_not_a_warning(published):
    """The cost suite bounds cost_usd twice: at least 0 (critical) and at most a setting (warning). Each
    expectation is judged by its own severity, not by the last one on the same column."""
    dsn, root = published
    hour = next(NEXT_HOUR)
    land(root, hour)
    before = published_marts(dsn)
    # a price that came out negative, parts and whole alike (so they still add up)
    execute(dsn, """create function negative() returns trigger language plpgsql as $$
                  begin new.cost_usd := -new.cost_usd; new.cost_input_usd := -new.cost_input_usd;
                        new.cost_cache_read_usd := -new.cost_cache_read_usd;
                        new.cost_cache_write_usd := -new.cost_cache_write_usd;
                        new.cost_output_usd := -new.cost_output_usd; new.cost_reasoning_usd := -new.cost_reasoning_usd;
                        new.cost_request_usd := -new.cost_request_usd; return new; end $$;
                  create trigger negative before insert on build.fct_event_costs
                  for each row when (new.cost_usd > 0) execute function negative()""")
    try:
        result = run_hours(hour, hour)
    finally:
        execute(dsn, "drop trigger negative on build.fct_event_costs; drop function negative()")

    assert not result.success
    assert failed_steps(result) == ["marts__fct_event_costs_fct_event_costs_suite"]
    assert published_marts(dsn) == before
    success, severity, summary, _, _ = last_result(dsn, "fct_event_costs_suite")
    assert (success, severity) == (False, "error") and "on cost_usd" in summary


def test_rows_at_every_limit_of_the_contract_load_and_pass_every_gate(published):
    """What the loader accepts, the gates accept: each row sits on a limit of the contract (and the one
    past it is quarantined), and the hour goes through to the published marts."""
    dsn, root = published
    hour = next(NEXT_HOUR)
    edge = [
        {"latency_ms": 3_600_000, "ttft_ms": 3_600_000},  # an hour, first token at the very end
        {"output_tokens": 1_000_000, "reasoning_tokens": 1_000_000},
        {"input_tokens": 10_000_000, "cached_input_tokens": 10_000_000, "cache_write_tokens": 0},
        {"status": "ERROR", "error_code": "server_error"},  # stored as error
        {"status": "Success"},
        {"org_id": "org_" + "x" * 252, "user_id": "u" * 256, "model": "m" * 256},
        {"event_time": (hour + timedelta(hours=2)).isoformat()},  # the latest time the contract lets in
        {"event_time": (hour - timedelta(days=30)).isoformat()},  # the earliest
        {"latency_ms": 0, "ttft_ms": 0, "input_tokens": 0, "cached_input_tokens": 0, "cache_write_tokens": 0,
         "output_tokens": 0, "reasoning_tokens": 0},
    ]
    past = [{"latency_ms": 3_600_001}, {"output_tokens": 1_000_001}, {"status": "ok"}, {"org_id": "o" * 257},
            {"ttft_ms": 900.5, "latency_ms": 900}, {"event_time": (hour + timedelta(hours=2, seconds=1)).isoformat()}]
    rows = land(root, hour, count=len(edge) + len(past))
    path = landing_path(root, hour)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps({**r, **changes}) for r, changes in zip(rows, edge + past, strict=True)) + "\n")

    result = run_hours(hour, hour)

    assert result.success
    assert "marts/publication" in published_steps(result)
    batch = query(dsn, "select rows_loaded, rows_quarantined from raw.ingestion_batches where landing_hour = %s",
                  (hour,))
    assert batch == [(len(edge), len(past))]
    statuses = query(dsn, "select status, count(*) from raw.usage_events where landing_hour = %s group by 1 order by 1",
                     (hour,))
    assert dict(statuses)["error"] >= 1 and set(dict(statuses)) <= {"error", "success"}
    ids = [r["event_id"] for r in rows[:len(edge)]]
    assert query(dsn, "select count(*) from marts.fct_event_costs where event_id = any(%s)", (ids,)) == [(len(ids),)]


def test_a_warning_is_recorded_and_the_run_goes_through(published, monkeypatch):
    dsn, root = published
    hour = next(NEXT_HOUR)
    rows = land(root, hour)
    monkeypatch.setenv("WAREHOUSE_MAX_COST_PER_REQUEST_USD", "0.000001")  # every priced request is "too dear"

    result = run_hours(hour, hour)

    assert result.success
    assert "marts/publication" in published_steps(result)
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "fct_event_costs_suite")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    success, severity, summary, _, _ = last_result(dsn, "fct_event_costs_suite")
    assert (success, severity) == (False, "warn") and "on cost_usd" in summary
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly where hour_utc = %s", (hour,)) == [(len(rows),)]


def test_every_dbt_test_and_unit_test_is_a_check_with_its_history(published):
    dsn, _ = published
    names = {n for (n,) in query(dsn, "select distinct check_name from audit.check_results")}
    # unit tests on the rollup, the pricing join and local days, and the reconciliation tests
    assert {"hourly_rollup_counts_errors_and_sums_tokens_per_hour",
            "event_price_override_window_then_catalog_time_and_tier",
            "local_days_follow_the_org_zone_across_a_daylight_saving_change",
            "assert_hourly_rollup_equals_events", "assert_daily_equals_sum_of_hourly",
            "assert_cost_hourly_equals_event_costs", "raw_usage_events_suite", "ingestion_ledger_suite",
            "stg_usage__events_suite", "fct_usage_hourly_suite", "fct_event_costs_suite",
            "raw_usage_events_freshness"} <= names
    rows = query(dsn, """select asset_key, partition_key, run_id is not null, checked_at is not null
                         from audit.check_results where check_name = %s order by result_id limit 1""",
                 ("hourly_rollup_counts_errors_and_sums_tokens_per_hour",))
    assert rows == [("marts/fct_usage_hourly", f"{START:%Y-%m-%d-%H}:00...{START + timedelta(hours=23):%Y-%m-%d-%H}:00",
                     True, True)]


def test_a_range_of_hours_is_released_together(published):
    dsn, root = published
    first, second = next(NEXT_HOUR), next(NEXT_HOUR)
    for hour, bad in ((first, "status = 'ok'"), (second, "ttft_ms = latency_ms + 1")):
        land(root, hour)
        load_only(dsn, root, hour)
        execute(dsn, f"update raw.usage_events set {bad} where event_id = %s", (f"{hour:%d%H}-1",))
    assert not run_hours(first, second).success  # one run over both hours, as a backfill

    from orchestration.cli import main

    assert release(first, "--from", f"{first:%Y-%m-%dT%H}") == 2  # an hour alone, or --from and --to

    assert main(["release", "--from", f"{first:%Y-%m-%dT%H}", "--to", f"{second:%Y-%m-%dT%H}", "--no-run"]) == 0
    assert query(dsn, "select landing_hour, rows_released, reasons from audit.releases "
                      "where landing_hour in (%s, %s) order by 1", (first, second)) == [
        (first, 1, {"status:not_allowed": 1}), (second, 1, {"ttft_ms:exceeds_latency": 1})]
    assert run_hours(first, second).success


def test_in_a_backfill_the_failure_lands_on_the_hour_whose_rows_fail(published):
    """Three hours in one run, a defect in the middle one: the run stops, the middle hour alone is failed
    (its neighbours passed, so their next run goes through), and the UI's partition view says so hour by hour."""
    dsn, root = published
    hours = [next(NEXT_HOUR) for _ in range(3)]
    for hour in hours:
        land(root, hour)
        load_only(dsn, root, hour)
    execute(dsn, "update raw.usage_events set status = 'ok' where event_id = %s", (f"{hours[1]:%d%H}-3",))
    instance = dg.DagsterInstance.ephemeral()
    assert not run_hours(hours[0], hours[-1], instance).success
    assert query(dsn, "select landing_hour, gate_status from raw.landing_hours where landing_hour = any(%s) "
                      "order by 1", (hours,)) == [(hours[0], "passed"), (hours[1], "failed"), (hours[2], "passed")]
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["raw", "usage_events"]), "raw_usage_events_suite"), limit=10)
    by_partition = {r.event.dagster_event.event_specific_data.partition: r.event.dagster_event.event_specific_data
                    for r in history}
    keys = [f"{h:%Y-%m-%d-%H}:00" for h in hours]
    assert [by_partition[k].passed for k in keys] == [True, False, True]
    assert "on status: 1 rows, e.g. ['ok']" in by_partition[keys[1]].description
    assert "(20 rows)" in by_partition[keys[1]].description
    assert by_partition[keys[0]].metadata["rows"].value == 20
    assert by_partition[None].passed is False  # the run's own result, which stopped it
    # each hour's own row in the history on-call reads, then the run's
    assert query(dsn, """select partition_key, success from audit.check_results
                         where check_name = 'raw_usage_events_suite' and partition_key = any(%s)
                         order by result_id""", (keys,)) == [(keys[0], True), (keys[1], False), (keys[2], True)]
