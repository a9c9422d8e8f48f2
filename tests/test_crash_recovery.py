"""A loader killed in the middle of a batch leaves nothing partial, and a rerun completes it."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from orchestration.database import recreate_database
from samples.synthetic import ORGS, events_for_hour, landing_path
from tests.conftest import TEST_DATABASE, query

pytestmark = pytest.mark.db

HOUR = datetime(2026, 3, 3, 14, tzinfo=UTC)  # a busy Tuesday afternoon: one big file
LOADER = """
import sys
from datetime import datetime
from pathlib import Path
import psycopg2
from ingestion.landing import load_hour
conn = psycopg2.connect(sys.argv[1], application_name="crash-test-loader")
load_hour(conn, Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]))
"""


def start_loader(dsn, landing) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOADER, dsn, str(landing), HOUR.isoformat()])


def wait_for_copy(dsn, loader: subprocess.Popen, timeout: float = 60) -> None:
    """Until the loader's connection has sent at least one COPY chunk of its batch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert loader.poll() is None, "the loader finished before it could be killed: make the file bigger"
        copying = query(dsn, """select count(*) from pg_stat_activity
                                where application_name = 'crash-test-loader'
                                  and (query ilike 'copy %%' or query ilike '%%from raw.event_ids%%')""")
        if copying[0][0]:
            return
        time.sleep(0.02)
    raise AssertionError("the loader never reached its COPY")


def comparable(dsn) -> dict:
    """The tables, without the ids a killed attempt may have used up (batch ids, timestamps)."""
    return {
        "events": query(dsn, "select event_id, event_time, org_id, output_tokens, landing_hour"
                             " from raw.usage_events order by event_id"),
        "ids": query(dsn, "select event_id, content_hash from raw.event_ids order by event_id"),
        "quarantine": query(dsn, "select file, line_number, raw_text, reasons from raw.quarantine order by 1, 2"),
        "ledger": query(dsn, "select file, checksum, rows_read, rows_loaded, rows_duplicate, rows_quarantined,"
                             " status from raw.ingestion_batches order by 1"),
        "gate": query(dsn, "select landing_hour, gate_status from raw.landing_hours"),
    }


def test_kill_mid_batch_then_rerun_equals_an_uninterrupted_run(server_dsn, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    path = landing_path(landing, HOUR)
    path.parent.mkdir(parents=True)
    events = [e for org in ORGS for e in events_for_hour(2, org, HOUR, 1_500_000)]
    lines = [json.dumps(e) for e in events] + ["{truncated", json.dumps(events[0])]  # a bad line, a duplicate
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")

    crashed = recreate_database(server_dsn, TEST_DATABASE + "_crash")
    loader = start_loader(crashed, landing)
    wait_for_copy(crashed, loader)
    os.kill(loader.pid, signal.SIGKILL)
    loader.wait()
    assert loader.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
    while query(crashed, "select count(*) from pg_stat_activity where application_name = 'crash-test-loader'")[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    after_kill = comparable(crashed)
    assert after_kill["events"] == [] and after_kill["quarantine"] == [] and after_kill["ledger"] == []

    rerun = start_loader(crashed, landing)
    assert rerun.wait(120) == 0
    clean = recreate_database(server_dsn, TEST_DATABASE + "_clean")
    assert start_loader(clean, landing).wait(120) == 0

    expected = comparable(clean)
    assert len(expected["events"]) == len(events) > 30_000
    assert expected["ledger"][0][2:6] == (len(lines), len(events), 1, 1)
    assert comparable(crashed) == expected
