"""Schedules: ingest and roll up every hour; retention every night."""

import dagster as dg

from orchestration.defs.dbt import cost_reports
from orchestration.defs.late_data import late_event_refresh_job
from orchestration.defs.restatement import cost_restatement_job
from orchestration.defs.retention import retention_job
from orchestration.runs import DBT_RUN_TAGS

hourly_usage_job = dg.define_asset_job(
    "hourly_usage_job", tags=DBT_RUN_TAGS,
    selection=dg.AssetSelection.groups("ingestion", "transform")
    | dg.AssetSelection.assets(["reference", "model_matches"]),
    description="Load one landing hour, gate it with its suite, and refresh the rollups it touches.",
)

# a quarter past the hour, so files of the previous hour have landed
hourly_usage_schedule = dg.build_schedule_from_partitioned_job(
    hourly_usage_job, name="hourly_usage_schedule", minute_of_hour=15
)

nightly_retention_schedule = dg.ScheduleDefinition(
    name="nightly_retention_schedule", job=retention_job, cron_schedule="30 2 * * *", execution_timezone="UTC",
    description="Purge expired raw events and hourly rollups at 02:30 UTC.",
)

reports_job = dg.define_asset_job(
    "reports_job", tags=DBT_RUN_TAGS, selection=dg.AssetSelection.assets(cost_reports),
    description="Rebuild the reports (spend against budget, top users and tags, insights, cohorts, experiments).")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[hourly_usage_job, late_event_refresh_job, cost_restatement_job],
    request_job=reports_job, default_status=dg.DefaultSensorStatus.RUNNING,
    description="After every run that changed the marts, rebuild the reports that summarise them.")
def reports_after_marts_sensor(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"reports-after-{context.dagster_run.run_id}")
