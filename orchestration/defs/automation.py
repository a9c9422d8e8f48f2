"""Schedules: ingest and roll up every hour; retention every night."""

import dagster as dg

from orchestration.defs.retention import retention_job

hourly_usage_job = dg.define_asset_job(
    "hourly_usage_job",
    selection=dg.AssetSelection.groups("ingestion", "transform"),
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
