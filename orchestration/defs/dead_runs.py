"""Runs whose process is gone are marked failed, so nothing waits on them forever.

A run killed with SIGKILL (or lost with its machine's power) never writes its own end: it stays STARTED,
the queue counts it against max_concurrent_runs and the reports sensor waits for it. Dagster's run
monitoring (dagster.yaml) can only time out runs that never start under the default run launcher, which
has no health check for a started run; this sensor is that check. Runs are launched here, by this code
location (or by a `warehouse` command, which tags its runs with its host): a run of this host whose
process no longer exists, or whose pid now belongs to a younger process, is dead.
"""

from __future__ import annotations

import socket

import dagster as dg

from ingestion.lifeline import process_gone
from orchestration.tags import HOST_TAG

GRACE_SECONDS = 30  # a run younger than this is left alone: its start may still be on its way


def run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that started the run, and when: from the run's RUN_START event."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None
    entry = records[0].event_log_entry
    return entry.dagster_event.pid, entry.timestamp


def dead_runs(instance: dg.DagsterInstance, now: float) -> list[tuple[dg.DagsterRun, int]]:
    """The STARTED runs of this host whose process is gone, with that process's pid."""
    host = socket.gethostname()
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=200):
        run = record.dagster_run
        if run.tags.get(HOST_TAG, host) != host:
            continue  # another machine's run: its process cannot be seen from here
        started = run_process(instance, run.run_id)
        if started is None or now - started[1] < GRACE_SECONDS:
            continue
        if process_gone(*started):
            dead.append((run, started[0]))
    return dead


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Marks failed the STARTED runs whose process is gone (killed, crashed), so the queue and "
                       "the reports sensor do not wait for them forever.")
def dead_run_sensor(context: dg.SensorEvaluationContext):
    import time

    found = dead_runs(context.instance, time.time())
    for run, pid in found:
        message = (f"the process of this run (pid {pid} on {socket.gethostname()}) is gone: it was killed or "
                   "crashed; marked failed by dead_run_sensor. What it wrote in schema build is put back by the "
                   "next dbt run, and loaded files are skipped on a rerun: rerun its partitions")
        context.instance.report_run_failed(run, message)
        context.log.warning(f"run {run.run_id} ({run.job_name}): {message}")
    return dg.SkipReason(f"marked {len(found)} dead runs failed" if found else "no dead run")
