"""Faults: a killed run, two runs at once, a crashed embedded server. Nothing stays stuck, nothing is
left running for nobody, and the next run still goes through.

The Dagster-level faults do not depend on which PostgreSQL runs underneath: CI runs this module on the
embedded server only (marker one_server), to stay inside its time limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psutil
import pytest

from orchestration.runs import materialize_hours, materialize_reference
from orchestration.tags import RANGE_END_TAG, RANGE_START_TAG
from samples.synthetic import Defects, generate
from tests.conftest import TEST_DATABASE, fresh_database, query

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 5, 4, tzinfo=UTC)


def key(hour: datetime) -> str:
    return f"{hour:%Y-%m-%d-%H}:00"


@pytest.fixture()
def launched(warehouse, server_dsn, tmp_path, monkeypatch):
    """A warehouse with a day of logs and its reference data, and a Dagster instance in PostgreSQL
    that runs started in other processes (`dagster job execute`) share with this test."""
    from orchestration.database import sqlalchemy_url

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", sqlalchemy_url(fresh_database(server_dsn, TEST_DATABASE + "_dagster")))
    monkeypatch.setenv("WAREHOUSE_INGEST_WORKERS", "2")
    monkeypatch.setenv("WAREHOUSE_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    generate(Path(os.environ["WAREHOUSE_LANDING_DIR"]), START, 1, 4000, seed=11, defects=Defects(0, 0, 0, 0))
    instance = dg.DagsterInstance.get()
    assert materialize_reference(instance).success
    yield warehouse, instance
    instance.dispose()


def start_run(first: datetime, last: datetime, log: Path) -> subprocess.Popen:
    """The hourly job over [first, last] as Dagster launches a run: its own process, a process per step.
    Its log goes to a file: a pipe nobody reads fills up and stops the run at its next line."""
    tags = json.dumps({RANGE_START_TAG: key(first), RANGE_END_TAG: key(last)})
    with open(log, "w") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m",
                                 "orchestration.definitions", "-j", "hourly_usage_job", "--tags", tags],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {seconds} s")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def connections(dsn: str) -> int:
    return query(dsn, "select count(*) from pg_stat_activity where datname = current_database() "
                      "and pid <> pg_backend_pid()")[0][0]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    def running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in processes if running(p)]


@pytest.mark.db
@pytest.mark.one_server
def test_a_killed_run_leaves_nothing_running_and_the_next_runs_go_through(launched, tmp_path):
    dsn, instance = launched
    run = start_run(START, START + timedelta(hours=23), tmp_path / "run.log")
    wait_for(lambda: [p for p in descendants(run.pid) if "dbt build" in " ".join(_cmdline(p))], 240,
             "dbt process of the run")
    time.sleep(2)  # dbt at work, with most of its models still to build
    before = descendants(run.pid)  # the step's process (the multiprocess executor's), dbt under it
    os.kill(run.pid, signal.SIGKILL)  # the run's own process, as an out-of-memory kill or `kill -9` would
    run.wait()

    # every process the run had started ends with it at once (dbt had tens of seconds of work left), and
    # their connections with them
    wait_for(lambda: not alive(before), 10, "end of the run's processes")
    wait_for(lambda: connections(dsn) == 0, 10, "end of the run's connections")

    # the run never wrote its own end: it stays STARTED until dead_run_sensor finds its process gone
    [stuck] = instance.get_runs(dg.RunsFilter(job_name="hourly_usage_job"))
    assert stuck.status == dg.DagsterRunStatus.STARTED  # what the queue and the reports sensor wait on
    from orchestration.defs.automation import IN_FLIGHT, reports_after_marts_sensor
    from orchestration.defs.dead_runs import GRACE_SECONDS, dead_run_sensor

    time.sleep(max(0.0, GRACE_SECONDS - (time.time() - stuck_start(instance, stuck.run_id))))
    dead_run_sensor(dg.build_sensor_context(instance=instance))
    failed = instance.get_run_by_id(stuck.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    [message] = [e.message for e in instance.all_logs(stuck.run_id) if e.dagster_event
                 and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE]
    assert f"the process of this run (pid {run.pid}" in message and "is gone" in message
    assert instance.get_runs_count(dg.RunsFilter(statuses=IN_FLIGHT)) == 0

    # the next run of the same hours goes through, and the reports sensor asks for its rebuild
    assert materialize_hours(START, START + timedelta(hours=23), instance).success
    request = reports_after_marts_sensor(dg.build_sensor_context(instance=instance, cursor="0"))
    assert isinstance(request, dg.SensorResult) and len(request.run_requests) == 1
    from orchestration.runs import materialize_reports

    assert materialize_reports(instance).success
    events = query(dsn, "select count(*) from raw.usage_events")[0][0]
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly")[0][0] == events > 0


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


PARENT_OF_A_WORKER = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from ingestion.parallel import _start_worker
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(sys.argv[1], os.getpid()))
    pool.submit(time.sleep, 120)  # a file that takes two minutes to load
    time.sleep(120)
"""


@pytest.mark.db
@pytest.mark.one_server
def test_a_loader_worker_dies_with_the_process_that_started_it(warehouse):
    """As load_hours starts its workers: killed with its parent, a worker's batch rolls back at once."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_A_WORKER, warehouse], cwd=ROOT)
    worker = None
    try:
        [worker] = wait_for(lambda: [p for p in descendants(parent.pid) if "spawn_main" in " ".join(_cmdline(p))
                                     and "resource_tracker" not in " ".join(_cmdline(p))] or None, 60, "worker")
        wait_for(lambda: connections(warehouse) == 1, 30, "the worker's connection")
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not alive([worker]), 5, "end of the worker")
        wait_for(lambda: connections(warehouse) == 0, 5, "end of its connection")
    finally:
        parent.kill()
        for process in alive([worker] if worker else []):
            process.kill()


PARENT_OF_DBT = """
import subprocess, sys, time
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR
subprocess.Popen([DBT_EXECUTABLE, "show", "--inline", "select pg_sleep(120) as slept", "--project-dir",
                  str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)])
time.sleep(120)
"""


@pytest.mark.db
@pytest.mark.one_server
def test_dbt_stops_and_cancels_its_query_when_the_process_that_started_it_dies(warehouse):
    from orchestration.database import dbt_env

    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_DBT], cwd=ROOT, env={**os.environ, **dbt_env(warehouse)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dbt: list[psutil.Process] = []
    try:
        sleeping = ("select count(*) from pg_stat_activity where query like '%pg_sleep(120)%' "
                    "and pid <> pg_backend_pid()")
        wait_for(lambda: query(warehouse, sleeping)[0][0] == 1, 60, "dbt's query")
        dbt = descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        # seconds, not the two minutes the query and the parent would have taken (a busy 2-core machine has
        # taken more than 10 s for dbt's interrupt and exit)
        wait_for(lambda: query(warehouse, sleeping)[0][0] == 0, 30, "end of its query on the server")
        wait_for(lambda: not alive(dbt), 30, "end of dbt")
    finally:
        parent.kill()
        for process in alive(dbt):
            process.kill()


def stuck_start(instance, run_id: str) -> float:
    [record] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    return record.event_log_entry.timestamp


@pytest.mark.db
@pytest.mark.one_server
def test_two_runs_of_the_same_hours_at_once_both_finish_and_count_each_event_once(launched, tmp_path):
    dsn, instance = launched
    first, last = START, START + timedelta(hours=23)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    runs = [start_run(first, last, log) for log in logs]  # as two people might from the command line
    for run in runs:
        run.wait(timeout=900)
    outputs = [log.read_text() for log in logs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert not any("already exists" in output for output in outputs)
    assert any("is between its dbt step and its publication; waiting" in output for output in outputs)
    events = query(dsn, "select count(*) from raw.usage_events where landing_hour <= %s", (last,))[0][0]
    assert query(dsn, "select sum(requests) from marts.fct_usage_hourly")[0][0] == events > 0
    assert query(dsn, "select count(*), count(distinct event_id) from marts.fct_event_costs")[0] == (events, events)
    assert query(dsn, "select run_id from audit.build_lease") == [(None,)]


def test_a_command_waits_for_the_embedded_server_to_recover_from_a_crash(tmp_path, monkeypatch, capfd):
    """pg_ctl gives up after 10 s while a server that crashed replays its write-ahead log; the command
    waits for the recovery instead of failing with a traceback."""
    import pgserver.postgres_server as server_module
    from pgserver import _commands

    from orchestration.database import connect, embedded_server_uri, forget_embedded_handle
    from orchestration.settings import Settings

    monkeypatch.setenv("WAREHOUSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("WAREHOUSE_DSN", raising=False)
    settings = Settings.from_env()
    pgdata = (tmp_path / "state" / "pgdata").resolve()
    try:
        conn = connect(embedded_server_uri(settings, "postgres"))
        with conn, conn.cursor() as cur:
            cur.execute("create table written (n int); insert into written select generate_series(1, 100000)")
        conn.close()
        _commands.pg_ctl(["stop", "-m", "immediate"], pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None)
        forget_embedded_handle(pgdata)  # a new command: nothing known of the server

        real = server_module.pg_ctl

        def slow_start(args, **kwargs):  # the server starts (and recovers), but pg_ctl stops waiting first
            if "start" in args:
                real([a for a in args if a != "-w"], **{k: v for k, v in kwargs.items() if k != "timeout"})
                raise subprocess.TimeoutExpired("pg_ctl", 10)
            return real(args, **kwargs)

        monkeypatch.setattr(server_module, "pg_ctl", slow_start)
        uri = embedded_server_uri(settings, "postgres")

        err = capfd.readouterr().err
        assert "did not stop cleanly and is recovering (replaying its write-ahead log" in err
        assert "Traceback" not in err
        conn = connect(uri)
        with conn, conn.cursor() as cur:
            cur.execute("select count(*) from written")
            assert cur.fetchone() == (100000,)  # committed before the crash, there after the recovery
        conn.close()
        assert "database system was not properly shut down" in (pgdata / "log").read_text()
    finally:
        monkeypatch.undo()
        if (pgdata / "postmaster.pid").exists():
            _commands.pg_ctl(["stop", "-m", "fast"], pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None)
        forget_embedded_handle(pgdata)
