"""Run the hourly job over a range of hours as one run (a single-run backfill), outside the daemon."""

from __future__ import annotations

import socket
from datetime import datetime

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# every job that runs dbt carries this tag; dagster.yaml lets one such run go at a time, so an hourly
# run and a price restatement never rebuild the same incremental model at once
DBT_RUN_TAGS = {"warehouse/dbt": "marts"}
# the machine a `warehouse` command ran its runs on (dead_run_sensor judges only its own host's runs)
HOST_TAG = "warehouse/host"
# the Dagster asset groups of what a dbt run of landing hours builds, and its publication (one group per
# dbt folder: a group of 40 assets cuts their names off in the UI's graph)
TRANSFORM_GROUPS = ("staging", "usage", "costs", "performance", "behaviour", "insights", "publication")
# an import of old files: how many days before its landing hour an event may be, for this run only
LATENESS_TAG = "warehouse/max_lateness_days"


def _here() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname()}


def materialize_hours(first_hour: datetime, last_hour: datetime, instance, log_level: str = "INFO",
                      tags: dict[str, str] | None = None, job_name: str = "hourly_usage_job"):
    """Ingest, gate and roll up every landing hour in [first_hour, last_hour]; returns the run's result."""
    from orchestration.definitions import defs
    from orchestration.partitions import hourly_partitions

    job = defs().resolve_job_def(job_name)
    key = hourly_partitions.get_partition_key_for_timestamp
    return job.execute_in_process(
        instance=instance,
        tags={RANGE_START_TAG: key(first_hour.timestamp()), RANGE_END_TAG: key(last_hour.timestamp()), **_here(),
              **(tags or {})},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def materialize_erasure(first_hour: datetime, last_hour: datetime, erasure_id: int, instance,
                        log_level: str = "INFO"):
    """Rebuild every mart over the event hours [first_hour, last_hour] after an erasure (orchestration/privacy.py)
    and publish them: the late-event job with an event window (a restatement id makes it one)."""
    from orchestration.defs.dbt import RESTATEMENT_TAG
    from orchestration.defs.late_data import REASON_TAG

    return materialize_hours(first_hour, last_hour, instance, log_level, job_name="late_event_refresh_job",
                             tags={RESTATEMENT_TAG: f"erasure-{erasure_id}", REASON_TAG: f"erasure {erasure_id}"})


def materialize_reference(instance, log_level: str = "INFO"):
    """Load the price catalog and the reference CSVs (reference_data_job); returns the run's result."""
    return _run_whole("reference_data_job", instance, log_level)


def materialize_reports(instance, log_level: str = "INFO"):
    """Rebuild the month-level reports (reports_job, which the sensor starts once the marts' runs are done)."""
    return _run_whole("reports_job", instance, log_level)


def materialize_report(day, instance, log_level: str = "INFO"):
    """Render (and send) the nightly report of one UTC day (nightly_report_job); returns the run's result."""
    return _run_whole("nightly_report_job", instance, log_level, partition_key=day.isoformat())


def _run_whole(job_name: str, instance, log_level: str, partition_key: str | None = None):
    from orchestration.definitions import defs

    job = defs().resolve_job_def(job_name)
    return job.execute_in_process(instance=instance, raise_on_error=False, tags=_here(), partition_key=partition_key,
                                  run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})
