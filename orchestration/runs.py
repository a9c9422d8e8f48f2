"""Run the hourly job over a range of hours as one run (a single-run backfill), outside the daemon."""

from __future__ import annotations

import socket
from datetime import datetime

from orchestration.tags import HOST_TAG, RANGE_END_TAG, RANGE_START_TAG, REASON_TAG, RESTATEMENT_TAG


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
