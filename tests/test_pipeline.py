"""End to end on a real PostgreSQL: generated files -> raw -> quality gate -> dbt rollups.

The expected numbers are computed here, straight from the generated files, without the loader.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ingestion.landing import load_hour
from orchestration.database import connect
from orchestration.tags import RANGE_END_TAG, RANGE_START_TAG
from samples.synthetic import Defects, generate, landing_path
from tests.conftest import query, run_hours

pytestmark = pytest.mark.db

START = datetime(2026, 3, 7, 0, tzinfo=UTC)  # spans a weekend and a Monday
DAYS = 2
LAST_HOUR = START + timedelta(days=DAYS) - timedelta(hours=1)
NUMERIC = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
           "latency_ms", "ttft_ms")


def expected_from_files(root: Path):
    """Per (UTC hour, org): requests, errors, input and output tokens, from the files alone."""
    seen: set[str] = set()
    hourly: dict[tuple, Counter] = defaultdict(Counter)
    outcome = Counter()
    for path in sorted(root.glob("dt=*/hour=*/*.jsonl.gz")):
        for line in gzip.open(path, "rt").read().splitlines():
            outcome["read"] += 1
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                outcome["quarantined"] += 1
                continue
            if any((event.get(k) or 0) < 0 for k in NUMERIC):
                outcome["quarantined"] += 1
                continue
            if event["event_id"] in seen:
                outcome["duplicate"] += 1
                continue
            seen.add(event["event_id"])
            outcome["loaded"] += 1
            ts = datetime.fromisoformat(event["event_time"])
            c = hourly[(ts.replace(minute=0, second=0, microsecond=0), event["org_id"])]
            c["requests"] += 1
            c["errors"] += event["status"] == "error"
            c["input_tokens"] += event["input_tokens"]
            c["output_tokens"] += event["output_tokens"]
    return hourly, outcome


def mart_hourly(dsn: str) -> dict[tuple, Counter]:
    rows = query(dsn, """select hour_utc, org_id, sum(requests), sum(errors), sum(input_tokens), sum(output_tokens)
                         from marts.fct_usage_hourly group by 1, 2""")
    return {(h, o): Counter(requests=r, errors=e, input_tokens=i, output_tokens=out)
            for h, o, r, e, i, out in rows}


def snapshot(dsn: str) -> dict[str, list]:
    """Every data table, in a stable order (run logs like audit.check_results are history by design)."""
    tables = {
        "raw.usage_events": "select * from raw.usage_events order by event_id",
        "raw.quarantine": "select batch_id, file, line_number, raw_text, reasons from raw.quarantine order by 1, 3",
        "raw.ingestion_batches": "select batch_id, file, checksum, rows_read, rows_loaded, rows_duplicate,"
                                 " rows_quarantined, status from raw.ingestion_batches order by 1",
        # every column but built_at, which says when a row was last computed
        "marts.fct_usage_hourly": "select to_jsonb(t) - 'built_at' from marts.fct_usage_hourly t order by 1",
        "marts.fct_usage_daily": "select to_jsonb(t) - 'built_at' from marts.fct_usage_daily t order by 1",
    }
    return {name: query(dsn, sql) for name, sql in tables.items()}


@pytest.fixture(scope="module")
def pipeline_instance():
    """The Dagster instance the module's backfill ran on: what the UI would read."""
    return dg.DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def loaded(server_dsn, dbt_manifest, tmp_path_factory, pipeline_instance):
    """Two days of generated logs with four times the usual defects, materialized as one run."""
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    manifest = generate(root, START, DAYS, 3000, seed=11, defects=Defects().scaled(4))
    result = run_hours(START, LAST_HOUR, pipeline_instance)
    yield dsn, root, manifest, result
    mp.undo()


def test_run_succeeds_and_every_row_is_accounted_for(loaded):
    dsn, root, manifest, result = loaded
    assert result.success
    _, outcome = expected_from_files(root)
    read, loaded_, duplicate, quarantined = query(dsn, """
        select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_quarantined)
        from raw.ingestion_batches""")[0]
    assert (read, loaded_, duplicate, quarantined) == (
        outcome["read"], outcome["loaded"], outcome["duplicate"], outcome["quarantined"])
    # the generator's own record of what it planted agrees too
    assert loaded_ == manifest.events
    assert duplicate == manifest.planted["duplicate"]
    assert quarantined == manifest.planted["malformed"] + manifest.planted["out_of_range"]
    assert manifest.planted["late"] > 0 and quarantined > 0 and duplicate > 0


def test_a_backfill_shows_each_hours_own_counts_and_check_results(loaded, pipeline_instance):
    """One run over 48 hours: each hourly partition of raw/usage_events carries that hour's counts (read from
    its files here), and each raw gate has one evaluation per partition with that hour's rows, as the UI shows;
    the marts built from those hours have one materialization and one evaluation of their gates."""
    dsn, root, _, result = loaded
    raw = dg.AssetKey(["raw", "usage_events"])
    hours = [START + timedelta(hours=i) for i in range(DAYS * 24)]
    rows_by_hour = dict(query(dsn, "select landing_hour, count(*) from raw.usage_events group by 1"))
    for hour in hours:
        key = f"{hour:%Y-%m-%d-%H}:00"
        [record] = pipeline_instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=raw, asset_partitions=[key]), limit=1).records
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        lines = sum(len(gzip.open(f, "rt").read().splitlines()) for f in (root / f"dt={hour:%Y-%m-%d}" /
                                                                          f"hour={hour:%H}").glob("*.jsonl.gz"))
        assert meta["read"] == lines > 0, key
        assert meta["read"] == meta["loaded"] + meta["duplicate"] + meta["quarantined"], key
        assert meta["loaded"] == rows_by_hour[hour] and meta["files"] == 1, key
    assert len({record_read(pipeline_instance, raw, h) for h in hours}) > 1  # not one total copied to every hour

    for check in ("raw_usage_events_suite", "ingestion_ledger_suite"):
        history = pipeline_instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(raw, check), limit=500)
        evaluations = {r.event.dagster_event.event_specific_data.partition: r.event.dagster_event.event_specific_data
                       for r in history if r.event and r.event.dagster_event.event_specific_data.partition}
        assert sorted(evaluations) == [f"{h:%Y-%m-%d-%H}:00" for h in hours], check
        if check == "raw_usage_events_suite":
            for hour in hours:
                e = evaluations[f"{hour:%Y-%m-%d-%H}:00"]
                assert e.passed and e.metadata["rows"].value == rows_by_hour[hour]
    # what is built from the hours is one table: its gates and materializations come once per run, over its range
    label = f"{hours[0]:%Y-%m-%d-%H}:00...{hours[-1]:%Y-%m-%d-%H}:00"
    for key, check in ((dg.AssetKey(["staging", "stg_usage__events"]), "stg_usage__events_suite"),
                       (dg.AssetKey(["marts", "fct_usage_hourly"]), "fct_usage_hourly_suite")):
        [run] = pipeline_instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, check), limit=500)
        evaluation = run.event.dagster_event.event_specific_data
        assert evaluation.description.startswith(f"partition {label}:"), check
    hourly = dg.AssetKey(["marts", "fct_usage_hourly"])
    records = pipeline_instance.fetch_materializations(hourly, limit=1000).records
    assert [r.run_id for r in records].count(result.run_id) == 1


def record_read(instance, asset_key, hour) -> int:
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[f"{hour:%Y-%m-%d-%H}:00"]), limit=1).records
    return record.asset_materialization.metadata["read"].value


def test_dbt_assets_report_the_rows_of_the_table_they_built(loaded, pipeline_instance):
    dsn, *_ = loaded
    key = dg.AssetKey(["marts", "fct_usage_hourly"])
    [record] = pipeline_instance.fetch_materializations(key, limit=1).records
    rows = record.asset_materialization.metadata["dagster/row_count"].value
    assert rows == query(dsn, "select count(*) from build.fct_usage_hourly")[0][0] > 0

def test_quarantined_rows_keep_line_text_and_reason(loaded):
    dsn, *_ = loaded
    reasons = Counter(r for (rs,) in query(dsn, "select reasons from raw.quarantine") for r in rs)
    assert reasons["malformed_json"] > 0
    assert any(r.endswith(":out_of_range") for r in reasons)
    file, line_number, raw_text = query(dsn, """select file, line_number, raw_text from raw.quarantine
                                                where 'malformed_json' = any(reasons) limit 1""")[0]
    lines = gzip.open(loaded[1] / file, "rt").read().splitlines()
    assert lines[line_number - 1] == raw_text


def test_hourly_rollup_matches_the_files(loaded):
    dsn, root, _, _ = loaded
    expected, _ = expected_from_files(root)
    actual = mart_hourly(dsn)
    assert actual.keys() == expected.keys()
    assert actual == expected


def test_daily_rollup_matches_the_files(loaded):
    dsn, root, _, _ = loaded
    expected_hourly, _ = expected_from_files(root)
    expected = defaultdict(Counter)
    for (hour, org), c in expected_hourly.items():
        expected[(hour.date(), org)].update(c)
    rows = query(dsn, """select day_utc, org_id, sum(requests), sum(errors), sum(input_tokens), sum(output_tokens)
                         from marts.fct_usage_daily group by 1, 2""")
    actual = {(d, o): Counter(requests=r, errors=e, input_tokens=i, output_tokens=out)
              for d, o, r, e, i, out in rows}
    assert actual == dict(expected)
    assert {d for d, _ in actual} == {(START + timedelta(days=i)).date() for i in range(DAYS)}


def test_late_events_are_counted_in_the_hour_they_happened(loaded):
    dsn, *_ = loaded
    late = query(dsn, """select count(*) from raw.usage_events
                         where date_trunc('hour', event_time, 'UTC') < landing_hour""")[0][0]
    assert late > 0
    # their hours are in the rollup even though their files landed later (the test above checks the sums)


def test_rematerializing_changes_nothing(loaded):
    dsn, *_ = loaded
    before = snapshot(dsn)
    one_hour = START + timedelta(hours=13)
    assert run_hours(one_hour, one_hour).success
    assert run_hours(START, LAST_HOUR).success
    after = snapshot(dsn)
    for table in before:
        assert after[table] == before[table], table


def test_a_run_after_a_run_does_not_parse_the_dbt_project_again(loaded):
    """dbt parses the whole project when the project, its database or its --vars change (5 s a run); the
    window of an hourly run is not a var, so the next run on the same warehouse reuses the last parse."""
    from orchestration.dbt_project import warehouse_dbt_project

    for hour in (START + timedelta(hours=5), START + timedelta(hours=6)):  # the second reuses the first's parse
        assert run_hours(hour, hour).success
    target = warehouse_dbt_project.project_dir / warehouse_dbt_project.target_path
    newest = max(target.glob("usage_marts-*/dbt.log"), key=lambda p: p.stat().st_mtime)
    events = {json.loads(line)["info"]["name"] for line in newest.read_text().splitlines() if line.startswith("{")}
    assert "UnableToPartialParse" not in events
    assert events & {"PartialParsingEnabled", "PartialParsingSkipParsing"}


def test_failed_suite_stops_before_dbt_and_marts_keep_their_rows(loaded):
    dsn, root, _, _ = loaded
    before = snapshot(dsn)
    # a client with a broken clock, in a new hour's file, plus a late event for an hour already in the
    # marts; the loader quarantines a first token after the end, so the rows are broken past it (as a
    # loader bug would): the raw suite is the second line
    bad_hour = LAST_HOUR + timedelta(hours=1)
    good = json.loads(gzip.open(landing_path(root, LAST_HOUR), "rt").readline())
    rows = [{**good, "event_id": f"bad-{i}", "event_time": (bad_hour + timedelta(minutes=i)).isoformat(),
             "latency_ms": 100.0, "ttft_ms": 90.0} for i in range(3)]
    rows.append({**good, "event_id": "late-into-good-hour"})
    path = landing_path(root, bad_hour)
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    conn = connect(dsn)
    try:
        assert all(b.status == "loaded" for b in load_hour(conn, root, bad_hour))
        with conn, conn.cursor() as cur:
            cur.execute("update raw.usage_events set ttft_ms = 900.0 where event_id like 'bad-%'")
    finally:
        conn.close()

    result = run_hours(bad_hour, bad_hour)

    assert not result.success  # the run is marked failed at the gate, which is what on-call sees
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name == "raw_usage_events_suite"]
    assert len(checks) == 1 and not checks[0].passed
    assert [e.step_key for e in result.get_step_failure_events()] == [
        "raw__usage_events_raw_usage_events_suite"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw/usage_events"}  # dbt never ran
    assert query(dsn, "select count(*) from raw.usage_events where event_id like 'bad-%'")[0][0] == 3
    after = snapshot(dsn)
    assert after["marts.fct_usage_hourly"] == before["marts.fct_usage_hourly"]
    assert after["marts.fct_usage_daily"] == before["marts.fct_usage_daily"]
    assert query(dsn, "select gate_status from raw.landing_hours where landing_hour = %s", (bad_hour,)) == [
        ("failed",)]
    success, severity, summary = query(dsn, """select success, severity, summary from audit.check_results
                                               where check_name = 'raw_usage_events_suite'
                                               order by result_id desc limit 1""")[0]
    assert (success, severity) == (False, "error")
    assert "latency_ms vs ttft_ms: 3 rows" in summary and "To fix:" in summary

    # the staging view never shows the failed hour's rows, so a later run cannot leak them either
    assert query(dsn, "select count(*) from staging.stg_usage__events where event_id like 'bad-%'")[0][0] == 0


def test_a_late_file_refreshes_the_hour_its_events_happened_in_and_says_so(loaded):
    dsn, root, _, _ = loaded
    late_for = START + timedelta(hours=20)
    arrival = LAST_HOUR + timedelta(hours=2)
    before = dict(query(dsn, "select org_id, sum(requests) from marts.fct_usage_hourly where hour_utc = %s"
                             " group by 1", (late_for,)))
    event = {**json.loads(gzip.open(landing_path(root, late_for), "rt").readline()),
             "event_id": "arrived-a-day-late", "event_time": (late_for + timedelta(minutes=7)).isoformat()}
    path = landing_path(root, arrival)
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(event) + "\n")

    instance = dg.DagsterInstance.ephemeral()
    result = run_hours(arrival, arrival, instance)

    assert result.success
    raw = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string()
               == "raw/usage_events").materialization.metadata
    assert raw["late_event_hours"].value == [late_for.strftime("%Y-%m-%d-%H:00")]
    after = dict(query(dsn, "select org_id, sum(requests) from marts.fct_usage_hourly where hour_utc = %s"
                            " group by 1", (late_for,)))
    assert after[event["org_id"]] == before[event["org_id"]] + 1
    assert {k: v for k, v in after.items() if k != event["org_id"]} == {
        k: v for k, v in before.items() if k != event["org_id"]}

    # the sensor turns the report into a rerun of that hour's rollups, the hour in the run's tags
    from orchestration.definitions import defs
    from orchestration.defs.late_data import late_event_refresh_job, late_event_sensor

    sensor_result = late_event_sensor(dg.build_sensor_context(instance=instance))
    [request] = sensor_result.run_requests
    late_key = late_for.strftime("%Y-%m-%d-%H:00")
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (late_key, late_key)
    assert result.run_id in request.tags["warehouse/reason"]
    refresh = defs().resolve_job_def(late_event_refresh_job.name).execute_in_process(
        instance=instance, tags=request.tags)
    assert refresh.success
    marts = {e.asset_key.to_user_string(): e.partition for e in refresh.get_asset_materialization_events()}
    assert "marts/fct_usage_hourly" in marts and marts["marts/fct_usage_hourly"] is None  # one table, not an hour
    assert dict(query(dsn, "select org_id, sum(requests) from marts.fct_usage_hourly where hour_utc = %s"
                           " group by 1", (late_for,))) == after  # rebuilt from raw: the same numbers
    # nothing new since: the next tick requests nothing
    assert isinstance(late_event_sensor(dg.build_sensor_context(instance=instance, cursor=sensor_result.cursor)),
                      dg.SkipReason)



def test_each_gate_run_links_its_own_data_docs_page(loaded, pipeline_instance):
    from urllib.parse import unquote, urlparse

    _, _, _, result = loaded
    history = pipeline_instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["raw", "usage_events"]), "raw_usage_events_suite"), limit=100)
    [run_result] = [r.event.dagster_event.event_specific_data for r in history
                    if r.event.dagster_event.event_specific_data.partition is None and r.run_id == result.run_id]
    link = run_result.metadata["data_docs"]
    assert isinstance(link, dg.UrlMetadataValue) and link.url.startswith("file://")  # the UI opens it
    page = Path(unquote(urlparse(link.url).path))
    assert page.exists() and f"run-{result.run_id[:8]}" in str(page) and "raw_usage_events" in str(page)


def test_marts_and_their_columns_are_described_where_bi_tools_look(loaded):
    """What `\\d+ marts.fct_cost_daily` shows: the model's and each column's description from the dbt YAML."""
    import yaml

    dsn, *_ = loaded
    documented = {m["name"]: m for path in (Path(__file__).resolve().parent.parent / "dbt_project" / "models")
                  .rglob("*.yml") for m in (yaml.safe_load(path.read_text()) or {}).get("models", [])}
    for table in ("fct_cost_daily", "fct_usage_hourly", "fct_performance_daily", "fct_event_costs"):
        model = documented[table]
        [(comment,)] = query(dsn, "select obj_description(%s::regclass, 'pg_class')", (f"marts.{table}",))
        assert " ".join(comment.split()) == " ".join(model["description"].split()), table
        columns = dict(query(dsn, """select attname, col_description(attrelid, attnum) from pg_attribute
                                     where attrelid = %s::regclass and attnum > 0 and not attisdropped""",
                             (f"marts.{table}",)))
        assert model["columns"]
        for column in model["columns"]:
            assert " ".join(columns[column["name"]].split()) == " ".join(column["description"].split()), column


def test_warehouse_docs_builds_the_catalog_with_comments_and_exposures_and_serves_it(loaded, tmp_path,
                                                                                     monkeypatch):
    import threading
    import urllib.request

    import yaml

    from orchestration.cli import main
    from orchestration.docs_site import DOCS_DIR, server

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # the command sets them; undone after
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://unused@127.0.0.1:1/unused")
    assert main(["docs", "--no-serve"]) == 0
    catalog = json.loads((DOCS_DIR / "catalog.json").read_text())
    costs = yaml.safe_load((Path(__file__).resolve().parent.parent / "dbt_project" / "models" / "costs" /
                            "_costs.yml").read_text())
    [model] = [m for m in costs["models"] if m["name"] == "fct_cost_daily"]
    node = catalog["nodes"]["model.llm_usage.fct_cost_daily"]
    assert " ".join(node["metadata"]["comment"].split()) == " ".join(model["description"].split())
    assert {c["name"] for c in model["columns"]} <= set(node["columns"])
    manifest = json.loads((DOCS_DIR / "manifest.json").read_text())
    report = manifest["exposures"]["exposure.llm_usage.nightly_report"]
    assert "model.llm_usage.fct_org_monthly_spend" in report["depends_on"]["nodes"]
    assert (DOCS_DIR / "static_index.html").stat().st_size > 100_000  # one file that opens offline

    site = server(DOCS_DIR, 0)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{site.server_port}"
        assert b"dbt" in urllib.request.urlopen(f"{base}/index.html", timeout=10).read()
        assert json.loads(urllib.request.urlopen(f"{base}/catalog.json", timeout=10).read()) == catalog
    finally:
        site.shutdown()
