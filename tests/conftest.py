"""Shared fixtures. Database tests run on a fresh database of the same server the project uses:
the embedded PostgreSQL by default, or the server named by WAREHOUSE_DSN (CI runs both). Two test
sessions on one server need different WAREHOUSE_TEST_DATABASE names (default warehouse_test)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import psycopg2
import pytest

from orchestration.database import recreate_database
from orchestration.settings import Settings

warnings.filterwarnings("ignore", module="platformdirs")
TEST_DATABASE = os.environ.get("WAREHOUSE_TEST_DATABASE", "warehouse_test")

# what the tests' runs write for people (Data Docs, reports) goes to a folder of the test session, not
# beside the user's own in WAREHOUSE_STATE_DIR
_OUTPUT = Path(tempfile.mkdtemp(prefix="warehouse-tests-"))
os.environ.setdefault("WAREHOUSE_DATA_DOCS_DIR", str(_OUTPUT / "data_docs"))
os.environ.setdefault("WAREHOUSE_REPORTS_DIR", str(_OUTPUT / "reports"))


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """A URL of the server under test (any database on it)."""
    settings = Settings.from_env()
    if settings.dsn:
        return settings.dsn
    from orchestration.database import embedded_server_uri

    return embedded_server_uri(settings, "postgres")


def fresh_database(server_dsn: str, name: str) -> str:
    return recreate_database(server_dsn, name)


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    from orchestration.dbt_project import prepare_manifest

    return prepare_manifest(refresh=True)


@pytest.fixture()
def warehouse(server_dsn, dbt_manifest, tmp_path, monkeypatch) -> str:
    """An empty warehouse database and landing zone for one test; returns its DSN."""
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    monkeypatch.setenv("WAREHOUSE_DSN", dsn)
    monkeypatch.setenv("WAREHOUSE_LANDING_DIR", str(tmp_path / "landing"))
    return dsn


def query(dsn: str, sql: str, params=()) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params or None)  # no params: a literal % stays a %
            return cur.fetchall()
    finally:
        conn.close()


def landed_events(root: Path) -> list[dict]:
    """Every line of the generated landing files under `root`, parsed (the independent side of a test)."""
    import gzip
    import json

    return [json.loads(line) for path in sorted(root.rglob("*.jsonl.gz"))
            for line in gzip.open(path, "rt").read().splitlines()]


def event_day(event: dict):
    """The UTC day of an event's time."""
    from datetime import UTC, datetime

    return datetime.fromisoformat(event["event_time"]).astimezone(UTC).date()


def landing_dir() -> Path:
    return Path(os.environ["WAREHOUSE_LANDING_DIR"])



def run_hours(first_hour, last_hour, instance=None):
    """Materialize the hourly job (ingest -> suite -> dbt) over [first_hour, last_hour] as one run."""
    import dagster as dg

    from orchestration.runs import materialize_hours

    return materialize_hours(first_hour, last_hour, instance or dg.DagsterInstance.ephemeral())
