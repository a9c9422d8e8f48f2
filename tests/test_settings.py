"""Bad settings and an unreachable server give one clear line that names the setting."""

import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.database import WarehouseUnreachable, connect, redacted
from orchestration.settings import SettingError, Settings
from tests.conftest import query


def test_defaults(monkeypatch):
    for name in ("WAREHOUSE_DSN", "WAREHOUSE_RAW_RETENTION_DAYS", "WAREHOUSE_HOURLY_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.dsn is None and settings.raw_retention_days == 30 and settings.hourly_retention_days == 90


@pytest.mark.parametrize("value", ["thirty", "0", "-5"])
def test_a_bad_number_names_its_setting(monkeypatch, value):
    monkeypatch.setenv("WAREHOUSE_RAW_RETENTION_DAYS", value)
    with pytest.raises(SettingError, match="WAREHOUSE_RAW_RETENTION_DAYS"):
        Settings.from_env()


@pytest.mark.parametrize("value", ["five percent", "0", "-0.1", "1.5", "nan"])
def test_a_bad_gate_threshold_names_its_setting(monkeypatch, value):
    monkeypatch.setenv("WAREHOUSE_MAX_QUARANTINE_SHARE", value)
    with pytest.raises(SettingError, match="WAREHOUSE_MAX_QUARANTINE_SHARE"):
        Settings.from_env()


def test_gate_thresholds_read_their_settings(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_MAX_QUARANTINE_SHARE", "0.2")
    monkeypatch.setenv("WAREHOUSE_MAX_COST_PER_REQUEST_USD", "120")
    monkeypatch.delenv("WAREHOUSE_MAX_HOURLY_ERROR_RATE", raising=False)
    settings = Settings.from_env()
    assert (settings.max_quarantine_share, settings.max_cost_per_request_usd, settings.max_hourly_error_rate) == (
        0.2, 120.0, 0.5)


def test_a_dsn_that_is_not_a_url_names_the_setting(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_DSN", "host=localhost dbname=x")
    with pytest.raises(SettingError, match="WAREHOUSE_DSN must be a libpq URL"):
        Settings.from_env()


def test_unreachable_server_is_one_line_naming_the_setting_without_the_password():
    with pytest.raises(WarehouseUnreachable) as error:
        connect("postgresql://me:s3cret@127.0.0.1:1/warehouse")
    message = str(error.value)
    assert "\n" not in message and "WAREHOUSE_DSN=postgresql://me:***@127.0.0.1:1/warehouse" in message
    assert "s3cret" not in message and redacted("postgresql://a:b@h/d") == "postgresql://a:***@h/d"


def test_the_cli_exits_with_one_line_when_the_warehouse_is_unreachable(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "WAREHOUSE_DSN": "postgresql://postgres@127.0.0.1:1/warehouse",
           "WAREHOUSE_LANDING_DIR": str(tmp_path), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "orchestration.cli", "demo", "--days", "1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert run.stderr.startswith("warehouse: cannot connect to the warehouse at WAREHOUSE_DSN=")


@pytest.mark.db
def test_warehouse_env_prints_what_dagster_commands_need(warehouse, tmp_path, monkeypatch, capsys):
    from orchestration.cli import main

    monkeypatch.setenv("WAREHOUSE_STATE_DIR", str(tmp_path / "state"))
    assert main(["env"]) == 0
    exports = dict(line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert exports["WAREHOUSE_DSN"].strip("'") == warehouse
    assert exports["DAGSTER_PG_URL"].strip("'").startswith("postgresql+psycopg2://")
    home = Path(exports["DAGSTER_HOME"].strip("'"))
    assert (home / "dagster.yaml").read_text() == (Path(__file__).parent.parent / "dagster.yaml").read_text()


def test_an_hour_on_the_command_line_is_read_in_every_form_people_write():
    from datetime import UTC, datetime

    from orchestration.cli import parse_hour

    expected = datetime(2026, 5, 5, 1, tzinfo=UTC)
    for text in ("2026-05-05T01", "2026-05-05T01:00", "2026-05-05 01:00", "2026-05-05T01:00Z",
                 "2026-05-05-01:00", "2026-05-05T03:00+02:00"):
        assert parse_hour(text) == expected, text
    for text, says in (("yesterday", "is not an hour; write it as 2026-05-05T01"),
                       ("2026-05-05T01:30", "is not the start of an hour")):
        with pytest.raises(SettingError, match=says):
            parse_hour(text)


def test_a_password_given_as_a_url_parameter_is_not_printed_either():
    with pytest.raises(WarehouseUnreachable) as error:
        connect("postgresql://me@127.0.0.1:1/warehouse?password=s3cret&sslmode=disable")
    message = str(error.value)
    assert "s3cret" not in message
    assert "WAREHOUSE_DSN=postgresql://me@127.0.0.1:1/warehouse?password=***&sslmode=disable" in message


def test_a_dead_webhook_is_reported_without_its_secret_path():
    from orchestration.alerting.channels import DeliveryError, WebhookSender

    secret = "T000/B000/XXXXsecretXXXX"
    with pytest.raises(DeliveryError) as error:
        WebhookSender(f"http://hook:pw@127.0.0.1:1/services/{secret}?token=abc").send({"text": "raw events are old"})
    line = str(error.value)  # what audit.alert_deliveries.last_error and the log keep
    assert line.startswith("webhook http://127.0.0.1:1/*** unreachable (")
    assert not any(s in line for s in (secret, "token=abc", "pw"))


@pytest.mark.db
def test_a_database_name_is_only_ever_a_name(server_dsn):
    """A database name from WAREHOUSE_DSN is quoted as an identifier: a quote in it is no SQL."""
    from orchestration.database import connect, ensure_database, with_database

    name = 'ho" template "template0'
    dsn = with_database(server_dsn, name)
    admin = connect(with_database(server_dsn, "postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
            cur.execute('drop database if exists "ho"" template ""template0"')
        ensure_database(dsn)
        with admin.cursor() as cur:
            cur.execute("select datname from pg_database where datname like 'ho%%'")
            assert cur.fetchall() == [(name,)]
        conn = connect(dsn)  # the URL reaches the database of that exact name
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute('drop database if exists "ho"" template ""template0"')
        admin.close()


@pytest.mark.parametrize("value", ["jit=off", "-c jit", "-c work_mem=256MB -c", "--jit=off"])
def test_bad_dbt_session_settings_name_the_setting(monkeypatch, value):
    from orchestration.database import dbt_env

    monkeypatch.setenv("WAREHOUSE_DBT_PG_OPTIONS", value)
    with pytest.raises(SettingError, match=r"WAREHOUSE_DBT_PG_OPTIONS=.* is not a list of `-c name=value` pairs"):
        dbt_env("postgresql://postgres@127.0.0.1:5432/warehouse")


@pytest.mark.db
@pytest.mark.parametrize("value, expected", [(None, ("off", "256MB")), ("-c work_mem=64MB", (None, "64MB"))])
def test_dbt_sessions_start_with_the_configured_settings(warehouse, monkeypatch, value, expected):
    """What dbt's own connection reports, asked through `dbt show` as a user would."""
    import os
    import re

    from orchestration.database import dbt_env
    from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR

    if value is None:
        monkeypatch.delenv("WAREHOUSE_DBT_PG_OPTIONS", raising=False)
    else:
        monkeypatch.setenv("WAREHOUSE_DBT_PG_OPTIONS", value)
    shown = subprocess.run(
        [DBT_EXECUTABLE, "show", "--inline", "select current_setting('jit') || '/' || current_setting('work_mem') as s",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env={**os.environ, **dbt_env(warehouse)}, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stdout[-2000:]
    jit, work_mem = re.search(r"\| (\w+)/(\w+) +\|", shown.stdout).groups()
    server_jit = query(warehouse, "show jit")[0][0]  # a plain connection: the server's own setting
    assert (jit, work_mem) == (expected[0] or server_jit, expected[1])
