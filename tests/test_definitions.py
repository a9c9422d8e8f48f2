"""The code location users open in the Dagster UI: the graph, checks, sensors and schedules."""

import dagster as dg
import pytest

from orchestration.definitions import defs
from orchestration.tags import RANGE_END_TAG, RANGE_START_TAG


@pytest.fixture(scope="module")
def repo(dbt_manifest):
    return defs().get_repository_def()


def test_asset_graph_runs_from_landing_files_to_daily_rollup(repo):
    graph = repo.asset_graph
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/usage_events", "staging/stg_usage__events", "marts/fct_usage_hourly",
            "marts/fct_usage_daily"} <= keys
    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key.split("/"))).parent_keys}

    assert "raw/usage_events" in parents("staging/stg_usage__events")
    assert "staging/stg_usage__events" in parents("marts/fct_usage_hourly")
    assert "marts/fct_usage_hourly" in parents("marts/fct_usage_daily")
    # landing hours partition the raw events only: what is built from them is one table, rebuilt over a run's hours
    assert isinstance(graph.get(dg.AssetKey(["raw", "usage_events"])).partitions_def, dg.HourlyPartitionsDefinition)
    for key in ("marts/fct_usage_hourly", "marts/fct_usage_daily", "marts/publication", "reference/model_matches"):
        assert graph.get(dg.AssetKey(key.split("/"))).partitions_def is None, key


def test_raw_suite_is_a_blocking_check_and_dbt_tests_are_checks(repo):
    graph = repo.asset_graph
    specs = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert specs["raw_usage_events_suite"].blocking
    assert not specs["raw_usage_events_freshness"].blocking
    assert "unique_stg_usage__events_event_id" in specs
    assert "assert_daily_equals_sum_of_hourly" in specs  # a singular reconciliation test
    assert "unique_combination_fct_usage_hourly_hour_utc__org_id__service__provider__model" in specs
    # every suite is a blocking check on its layer; dbt unit tests are checks on the model they test
    suites = {key.name: key.asset_key.to_user_string() for key in graph.asset_check_keys
              if key.name.endswith("_suite")}
    assert suites == {"raw_usage_events_suite": "raw/usage_events", "ingestion_ledger_suite": "raw/usage_events",
                      "stg_usage__events_suite": "staging/stg_usage__events",
                      "fct_usage_hourly_suite": "marts/fct_usage_hourly",
                      "fct_event_costs_suite": "marts/fct_event_costs"}
    assert all(specs[name].blocking for name in suites)
    units = {key.name: key.asset_key.to_user_string() for key in graph.asset_check_keys
             if (graph.get_check_spec(key).description or "").startswith("dbt unit test")}
    assert units == {"hourly_rollup_counts_errors_and_sums_tokens_per_hour": "marts/fct_usage_hourly",
                     "event_price_override_window_then_catalog_time_and_tier": "staging/int_event_prices",
                     "local_days_follow_the_org_zone_across_a_daylight_saving_change": "marts/fct_cost_daily_local",
                     "monthly_spend_forecast_and_crossings_by_hand": "marts/fct_org_monthly_spend",
                     "monthly_spend_on_the_first_of_a_month": "marts/fct_org_monthly_spend",
                     "performance_hour_counts_errors_by_code": "marts/fct_performance_hourly"}
    assert all(specs[name].blocking for name in units)


def test_publication_waits_for_every_mart_of_the_run(repo):
    graph = repo.asset_graph
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey(["marts", "publication"])).parent_keys}
    assert parents >= {"marts/fct_usage_hourly", "marts/fct_usage_daily", "marts/fct_event_costs",
                       "marts/fct_cost_daily_local"}
    for job in ("hourly_usage_job", "late_event_refresh_job", "cost_restatement_job"):
        assert dg.AssetKey(["marts", "publication"]) in repo.get_job(job).asset_layer.executable_asset_keys, job


@pytest.mark.parametrize("job_name", ["hourly_usage_job", "late_event_refresh_job", "cost_restatement_job"])
def test_every_blocking_check_of_a_publishing_job_runs_before_publication(repo, job_name):
    """Read from the execution plan Dagster runs: a blocking check that is not upstream of publication
    could fail after publication copied its rows to BI (a new check, asset or gate must not be forgotten)."""
    from dagster._core.execution.api import create_execution_plan  # the plan itself: no public API shows it

    job = repo.get_job(job_name)
    hour = "2026-05-04-00:00"
    plan = create_execution_plan(job, tags={RANGE_START_TAG: hour, RANGE_END_TAG: hour})
    steps = {step.key: step for step in plan.get_all_steps_in_topo_order()}
    [publication] = [s for s in steps.values()
                     if any(o.properties and o.properties.asset_key == dg.AssetKey(["marts", "publication"])
                            for o in s.step_outputs)]

    upstream, todo = set(), [publication.key]
    while todo:
        for parent in steps[todo.pop()].get_execution_dependency_keys():
            if parent not in upstream:
                upstream.add(parent)
                todo.append(parent)

    blocking = {(o.properties.asset_check_key, step.key) for step in steps.values() for o in step.step_outputs
                if o.properties and o.properties.asset_check_key
                and repo.asset_graph.get_check_spec(o.properties.asset_check_key).blocking}
    assert blocking, "the plan has no blocking check: the test would prove nothing"
    late = sorted(key.to_user_string() for key, step in blocking if step not in upstream)
    assert late == [], f"blocking checks that do not gate publication in {job_name}"


def test_schedules_sensors_and_jobs(repo):
    schedules = {s.name: s for s in repo.schedule_defs}
    assert schedules["hourly_usage_schedule"].cron_schedule == "15 * * * *"
    assert schedules["hourly_usage_schedule"].job_name == "hourly_usage_job"
    assert schedules["nightly_retention_schedule"].cron_schedule == "30 2 * * *"
    assert schedules["nightly_retention_schedule"].job_name == "retention_job"
    assert schedules["nightly_reference_schedule"].job_name == "reference_data_job"
    assert {s.name for s in repo.sensor_defs} == {
        "freshness_alert_sensor", "warehouse_alert_sensor", "failed_run_alert_sensor", "late_event_sensor",
        "dead_run_sensor", "price_restatement_sensor", "reports_after_marts_sensor", "expired_raw_days_sensor"}
    sensors = {s.name: s for s in repo.sensor_defs}
    assert sensors["expired_raw_days_sensor"].job_name == "retention_job"
    assert sensors["expired_raw_days_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    reports = {k.to_user_string() for k in repo.get_job("reports_job").asset_layer.executable_asset_keys}
    assert reports == {"marts/fct_org_monthly_spend", "marts/fct_top_users_monthly", "marts/fct_top_tags_monthly",
                       "marts/insights", "marts/fct_weekly_cohorts", "marts/fct_experiment_results"}
    assert repo.asset_graph.get(dg.AssetKey(["marts", "insights"])).partitions_def is None
    late = repo.get_job("late_event_refresh_job")
    assert "raw/usage_events" not in {k.to_user_string() for k in late.asset_layer.executable_asset_keys}
    hourly = repo.get_job("hourly_usage_job")
    assert {k.to_user_string() for k in hourly.asset_layer.executable_asset_keys} >= {
        "raw/usage_events", "reference/model_matches", "marts/fct_usage_hourly", "marts/fct_usage_daily",
        "marts/fct_event_costs", "marts/fct_cost_daily_local"}
    restate = {k.to_user_string() for k in repo.get_job("cost_restatement_job").asset_layer.executable_asset_keys}
    assert "marts/fct_event_costs" in restate and "marts/fct_usage_hourly" not in restate
    assert not reports & {k.to_user_string() for k in hourly.asset_layer.executable_asset_keys}
    assert "raw/usage_events" not in restate


def test_cost_marts_read_prices_from_the_reference_group(repo):
    graph = repo.asset_graph

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key.split("/"))).parent_keys}

    assert {"reference/catalog_prices", "reference/price_overrides", "reference/model_matches",
            "staging/stg_usage__events"} <= parents("staging/int_event_prices")
    assert "staging/int_event_prices" in parents("marts/fct_event_costs")
    assert {"marts/fct_cost_daily_local", "reference/org_budgets"} <= parents("marts/fct_org_monthly_spend")
    assert graph.get(dg.AssetKey(["reference", "catalog_prices"])).partitions_def is None


def test_dbt_window_vars_are_the_partition_window():
    from datetime import UTC, datetime

    from orchestration.defs.dbt import window_env, window_vars

    start, end = datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 3, 1, 6, tzinfo=UTC)
    assert window_vars(start, end) == {"min_date": "2026-03-01T05:00:00+00:00",
                                       "max_date": "2026-03-01T06:00:00+00:00"}
    # a price restatement refreshes event hours and names its ledger rows
    assert window_vars(start, end, "prices-7-x") == {
        "min_date": "2026-03-01T05:00:00+00:00", "max_date": "2026-03-01T06:00:00+00:00",
        "window_kind": "event", "restatement_id": "prices-7-x"}
    # dbt reads it from the environment (macros/run_window.sql): as --vars, each new hour reparsed the project
    assert window_env(window_vars(start, end)) == {"WAREHOUSE_DBT_MIN_DATE": "2026-03-01T05:00:00+00:00",
                                                   "WAREHOUSE_DBT_MAX_DATE": "2026-03-01T06:00:00+00:00"}


def test_dbt_calls_skip_the_version_process_and_the_adapter_load():
    """WarehouseDbtCli replaces two private parts of dagster-dbt's resource: an upgrade that renames or
    reshapes them fails here, not silently in every run."""
    import inspect
    import subprocess

    from dagster_dbt import DbtCliResource

    from orchestration.dbt_project import DBT_EXECUTABLE, SKIPPED_START_UP, dbt_resource

    for name in SKIPPED_START_UP:
        assert hasattr(DbtCliResource, name), f"dagster-dbt has no {name} now: review WarehouseDbtCli"
    assert list(inspect.signature(DbtCliResource._initialize_dbt_core_adapter).parameters) == ["self", "args"]
    printed = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True).stdout
    assert f"installed: {dbt_resource()._cli_version}" in printed


def test_late_hours_are_grouped_into_contiguous_runs():
    from orchestration.defs.late_data import hour_ranges

    keys = ["2026-03-02-05:00", "2026-03-01-23:00", "2026-03-02-00:00", "2026-03-02-07:00", "2026-03-02-05:00"]
    assert hour_ranges(keys) == [("2026-03-01-23:00", "2026-03-02-00:00"), ("2026-03-02-05:00", "2026-03-02-05:00"),
                                 ("2026-03-02-07:00", "2026-03-02-07:00")]


def test_jobs_that_run_dbt_queue_behind_each_other(repo):
    import yaml

    from orchestration.defs.dbt import cost_reports, usage_marts
    from orchestration.settings import PROJECT_ROOT
    from orchestration.tags import DBT_RUN_TAGS

    dbt_keys = {*usage_marts.keys, *cost_reports.keys}
    for job in repo.get_all_jobs():
        if job.name.startswith("__") or not job.asset_layer:
            continue
        if set(job.asset_layer.executable_asset_keys) & dbt_keys:
            assert DBT_RUN_TAGS.items() <= job.tags.items(), job.name
    [limit] = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())["run_coordinator"]["config"][
        "tag_concurrency_limits"]
    assert (limit["key"], limit["limit"]) == (*DBT_RUN_TAGS, 1)


def test_a_backfill_asks_for_one_reports_rebuild_once_its_last_hour_is_done():
    """The sensor reads the instance's run history: runs of jobs named like the real ones stand in for them."""
    import uuid

    from orchestration.defs.automation import reports_after_marts_sensor

    instance = dg.DagsterInstance.ephemeral()
    noop = dg.op(name="noop")(lambda: None)
    jobs = {name: dg.GraphDefinition(name=name, node_defs=[noop]).to_job()
            for name in ("hourly_usage_job", "late_event_refresh_job", "reports_job", "retention_job")}

    def finish(job: str) -> None:
        assert jobs[job].execute_in_process(instance=instance).success

    def started(job: str) -> dg.DagsterRun:
        run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
        return instance.add_run(run)

    def tick(cursor: str | None):
        return reports_after_marts_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))

    # runs that finished before the sensor's first tick (the UI just opened) start no rebuild
    finish("hourly_usage_job")
    first = tick(None)
    assert first.run_requests == [] and first.skip_message.startswith("watching from now on")
    assert tick(first.cursor).skip_message == "no run has changed the marts since the last rebuild"
    # a backfill: three hours done, a fourth still running
    for _ in range(3):
        finish("hourly_usage_job")
    running = started("hourly_usage_job")
    waiting = tick(first.cursor)
    assert waiting.run_requests == []
    assert waiting.skip_message == "3 hourly_usage_job changed the marts; waiting for hourly_usage_job to finish"
    # the last hour finishes, a late-event refresh too: one rebuild for all five
    instance.delete_run(running.run_id)
    finish("hourly_usage_job")
    finish("late_event_refresh_job")
    rebuild = tick(waiting.cursor)
    [request] = rebuild.run_requests
    assert request.tags["warehouse/reason"] == "after 4 hourly_usage_job, 1 late_event_refresh_job"
    # nothing new (a retention run does not change the marts): no second rebuild
    finish("retention_job")
    assert tick(rebuild.cursor).run_requests == []
    # a run that finishes while the rebuild runs gets the next one
    started("reports_job")
    finish("hourly_usage_job")
    assert tick(rebuild.cursor).skip_message.startswith("a reports rebuild is under way")


def test_the_nightly_report_schedule_asks_at_six_for_the_day_before():
    from datetime import UTC, datetime

    from orchestration.defs.report import nightly_report_schedule

    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 6, tzinfo=UTC))
    request = nightly_report_schedule(context)
    assert request.partition_key == "2026-11-30" and request.run_key == "2026-11-30"
    assert nightly_report_schedule.cron_schedule == "0 6 * * *"
    assert nightly_report_schedule.execution_timezone == "UTC"  # WAREHOUSE_REPORT_TIMEZONE unset


def test_the_ui_shows_each_dbt_asset_as_bi_reads_it(repo):
    """Table names BI queries, owners, descriptions without SQL, no stub asset, groups small enough to read."""
    from collections import Counter

    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert "raw/landing_hours" not in keys  # the gate status of raw/usage_events' hours is part of that asset
    for key, table in (("marts/fct_usage_hourly", "marts.fct_usage_hourly"), ("marts/insights", "marts.insights"),
                       ("staging/stg_usage__events", "staging.stg_usage__events")):
        asset_key = dg.AssetKey.from_user_string(key)
        spec = repo.assets_defs_by_key[asset_key].specs_by_key[asset_key]
        assert spec.metadata["dagster/table_name"] == table
        assert spec.owners == ["team:data-platform"]
        assert "Raw SQL" not in (spec.description or "") and "select" not in (spec.description or "").lower()
    groups = Counter(repo.asset_graph.get(k).group_name for k in repo.asset_graph.get_all_asset_keys())
    assert max(groups.values()) <= 16, groups
    assert {"staging", "usage", "costs", "performance", "behaviour", "insights", "publication", "reports",
            "ingestion", "reference", "delivery"} <= set(groups)


def test_old_data_docs_and_dbt_artifacts_are_cleaned_up(tmp_path, monkeypatch):
    import os
    import time

    from orchestration.defs.dbt import prune_dbt_targets
    from orchestration.defs.quality import run_docs_dir
    from orchestration.settings import Settings

    monkeypatch.setenv("WAREHOUSE_DATA_DOCS_DIR", str(tmp_path / "docs"))
    monkeypatch.setenv("WAREHOUSE_DATA_DOCS_RETENTION_DAYS", "7")
    old, recent = tmp_path / "docs" / "2026-01-01-0000-run-aaaaaaaa", tmp_path / "docs" / "2026-01-09-0000-run-bb"
    for folder, age_days in ((old, 8), (recent, 6)):
        folder.mkdir(parents=True)
        then = time.time() - age_days * 86400
        os.utime(folder, (then, then))
    folder = run_docs_dir(Settings.from_env(), "0123456789abcdef", "2026-01-10-00:00...2026-01-10-05:00")
    assert folder == tmp_path / "docs" / "2026-01-10-0000_to_2026-01-10-0500-run-01234567"
    assert not old.exists() and recent.exists()  # a run's pages are kept 7 days, then go

    target = tmp_path / "target"
    for n in range(8):
        (target / f"usage_marts-{n:07d}-abc").mkdir(parents=True)
        os.utime(target / f"usage_marts-{n:07d}-abc", (n, n))
    (target / "manifest.json").write_text("{}")
    prune_dbt_targets(target, keep=5)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"] + [f"usage_marts-{n:07d}-abc"
                                                                            for n in range(3, 8)]


def test_the_private_dagster_dbt_path_builds_what_the_public_dbt_assets_builds():
    """orchestration/dagster_dbt_private.py is the only reader of dagster-dbt's private parts: here, what it
    builds is compared with the public @dbt_assets for the same selection, so an upgrade that changes
    them fails in this test instead of quietly in the code location."""
    import json

    from dagster_dbt import dbt_assets

    from orchestration.dagster_dbt_private import check_key_of_test, description_without_sql
    from orchestration.dbt_project import warehouse_dbt_project
    from orchestration.defs.dbt import MANIFEST, TRANSLATOR, usage_marts

    @dbt_assets(manifest=MANIFEST, exclude="tag:reports", dagster_dbt_translator=TRANSLATOR,
                project=warehouse_dbt_project, name="public_usage_marts")
    def public(context):
        yield from ()

    manifest = json.loads(MANIFEST.read_text())
    units = {dg.AssetCheckKey(TRANSLATOR.get_asset_key(manifest["nodes"][u["depends_on"]["nodes"][0]]), u["name"])
             for u in manifest["unit_tests"].values()}
    units = {key for key in units if key.asset_key in usage_marts.keys}  # the reports' are the other job's
    assert usage_marts.keys == public.keys and len(public.keys) >= 20
    assert usage_marts.check_keys - units == public.check_keys and units and units <= usage_marts.check_keys
    selection = [{k: v for k, v in op.tags.items() if k.startswith("dagster_dbt/")}
                 for op in (usage_marts.op, public.op)]
    assert selection[0] == selection[1] and selection[0]["dagster_dbt/exclude"] == "tag:reports"
    tests = [uid for uid in manifest["nodes"] if uid.startswith("test.")]
    keys = {check_key_of_test(manifest, TRANSLATOR, uid, warehouse_dbt_project) for uid in tests}
    assert (keys - {None}) >= public.check_keys and len(public.check_keys) > 20
    model = manifest["nodes"]["model.llm_usage.fct_usage_hourly"]
    assert model["raw_code"].strip()[:40] not in description_without_sql(model)
    assert model["description"].strip()[:40] in description_without_sql(model)
