"""Schedules: ingest and roll up every hour; retention every night, and whenever raw holds expired days; the
reports after the marts change."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.defs.dbt import cost_reports
from orchestration.defs.late_data import late_event_refresh_job
from orchestration.defs.restatement import cost_restatement_job
from orchestration.defs.retention import retention_job
from orchestration.resources import WarehouseResource
from orchestration.retention import expired_raw_days
from orchestration.tags import DBT_RUN_TAGS, REASON_TAG, TRANSFORM_GROUPS

# steps run in the run's own process: a process per step (Dagster's default) loaded the code location
# once more for each, 28 of an hourly run's 64 s (bench/RESULTS.md, end-to-end hourly latency)
hourly_usage_job = dg.define_asset_job(
    "hourly_usage_job", tags=DBT_RUN_TAGS, executor_def=dg.in_process_executor,
    selection=dg.AssetSelection.groups("ingestion", *TRANSFORM_GROUPS)
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
    "reports_job", tags=DBT_RUN_TAGS, executor_def=dg.in_process_executor,  # one step: no process of its own
    selection=dg.AssetSelection.assets(cost_reports),
    description="Rebuild the reports (spend against budget, top users and tags, insights, cohorts, experiments).")


MARTS_JOBS = (hourly_usage_job.name, late_event_refresh_job.name, cost_restatement_job.name)
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


@dg.sensor(job=reports_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Once the runs that change the marts have finished, one rebuild of the reports that "
                       "summarise them (a backfill of many hours asks for one rebuild, not one per hour).")
def reports_after_marts_sensor(context: dg.SensorEvaluationContext):
    instance = context.instance
    if instance.get_runs_count(dg.RunsFilter(job_name=reports_job.name, statuses=IN_FLIGHT)):
        return dg.SkipReason("a reports rebuild is under way; runs that finish meanwhile get the next one")
    # the cursor is the storage id of the last run success seen: ids grow in the order runs finish
    # (filtered here, not by job_names: the SQLite storage of a local instance cannot)
    if not context.cursor:  # first tick (the UI just opened): runs that finish from now on ask for a rebuild
        newest = instance.fetch_run_status_changes(dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_SUCCESS),
                                                   limit=1, ascending=False).records
        return dg.SensorResult(
            skip_reason="watching from now on: runs that change the marts from here ask for a rebuild "
                        "(run reports_job to rebuild the reports now)",
            cursor=str(newest[0].storage_id if newest else 0))
    successes = instance.fetch_run_status_changes(dg.RunStatusChangeRecordsFilter(
        dg.DagsterEventType.RUN_SUCCESS, after_storage_id=int(context.cursor)), limit=1000, ascending=True)
    if not successes.records:
        return dg.SkipReason("no run has changed the marts since the last rebuild")
    cursor = str(successes.records[-1].storage_id)
    changed = [record for record in successes.records if record.event_log_entry.job_name in MARTS_JOBS]
    if not changed:
        return dg.SensorResult(skip_reason="no run has changed the marts since the last rebuild", cursor=cursor)
    counts = Counter(record.event_log_entry.job_name for record in changed)
    finished = ", ".join(f"{n}{'+' if successes.has_more else ''} {job}" for job, n in sorted(counts.items()))
    busy = [job for job in MARTS_JOBS if instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT))]
    if busy:  # a backfill: rebuild once, after its last hour (the cursor stays, so these runs still count)
        return dg.SkipReason(f"{finished} changed the marts; waiting for {', '.join(busy)} to finish")
    context.log.info(f"{finished} changed the marts: rebuilding the reports")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"reports-after-{changed[-1].run_id}",
                                    tags={REASON_TAG: f"after {finished}"[:200]})],
        cursor=cursor)


@dg.sensor(job=retention_job, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Retention when raw holds day partitions past WAREHOUSE_RAW_RETENTION_DAYS (an import of "
                       "old files, say), not only at 02:30; never while a run that reads raw is under way.")
def expired_raw_days_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    window = timedelta(days=warehouse.settings.raw_retention_days)
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            expired = list(expired_raw_days(cur, datetime.now(UTC), window))
    finally:
        conn.close()
    if not expired:
        return dg.SkipReason(f"raw holds no day older than {window.days} days")
    instance = context.instance
    # an import's own run still reads its old days: they go once it has built the marts from them
    busy = [job for job in (*MARTS_JOBS, retention_job.name)
            if instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT))]
    if busy:
        return dg.SkipReason(f"{len(expired)} expired raw days wait for {', '.join(busy)} to finish")
    days = f"{expired[0]:%Y-%m-%d}" + (f" to {expired[-1]:%Y-%m-%d}" if len(expired) > 1 else "")
    context.log.info(f"raw holds {len(expired)} days past the {window.days}-day window ({days}): retention")
    return dg.RunRequest(run_key=f"expired-raw-{days}-{datetime.now(UTC):%Y%m%d%H}",
                         tags={REASON_TAG: f"raw holds expired days {days}"})
