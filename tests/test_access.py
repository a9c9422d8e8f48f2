"""Who reads what, proven by logging in as each role: BI reads the marts without the money, finance
reads the money, an analyst reads only their orgs' rows, and nobody but the pipeline reads raw data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg2
import pytest
from psycopg2 import errors

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.conftest import query, run_hours

pytestmark = pytest.mark.db

START = datetime(2026, 6, 1, tzinfo=UTC)
ANALYST = "test_analyst_acme"


@pytest.fixture(scope="module")
def secured(server_dsn, dbt_manifest, tmp_path_factory):
    """A day of usage run through every job, then `warehouse access` and one analyst for org_acme."""
    from orchestration.cli import main
    from orchestration.database import sqlalchemy_url
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root, state = tmp_path_factory.mktemp("landing"), tmp_path_factory.mktemp("state")
    for name, value in {"WAREHOUSE_DSN": dsn, "WAREHOUSE_LANDING_DIR": str(root),
                        "WAREHOUSE_STATE_DIR": str(state), "DAGSTER_HOME": str(state / "dagster_home"),
                        "DAGSTER_PG_URL": sqlalchemy_url(fresh_database(server_dsn, TEST_DATABASE + "_dagster")),
                        "WAREHOUSE_DATA_DOCS_DIR": str(tmp_path_factory.mktemp("docs")),
                        "WAREHOUSE_BI_PASSWORD": "bi-pw", "WAREHOUSE_FINANCE_PASSWORD": "finance-pw",
                        "WAREHOUSE_PIPELINE_PASSWORD": "pipeline-pw",
                        "WAREHOUSE_ANALYST_PASSWORD": "analyst-pw"}.items():
        mp.setenv(name, value)
    generate(root, START, 1, 1500, seed=4, defects=Defects(0, 0, 0, 0))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(hours=22), instance).success
    assert materialize_reports(instance).success
    assert main(["access"]) == 0
    assert main(["access", "analyst", ANALYST, "--org", "org_acme"]) == 0
    yield dsn, root
    mp.undo()


def as_role(dsn: str, role: str, sql: str, params=()):
    """Run `sql` logged in as `role` (its own connection, as a BI tool would), returning the rows."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    conn = psycopg2.connect(urlunsplit(parts._replace(netloc=f"{role}@{host}")))
    try:
        with conn.cursor() as cur:
            cur.execute("select current_user")
            assert cur.fetchone()[0] == role
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []
    finally:
        conn.rollback()
        conn.close()


def refused(dsn: str, role: str, sql: str) -> bool:
    try:
        as_role(dsn, role, sql)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_bi_reads_the_marts_without_the_money_and_nothing_else(secured):
    dsn, _ = secured
    assert as_role(dsn, "bi_reader", "select count(*), sum(requests) from marts.fct_usage_hourly") == \
        query(dsn, "select count(*), sum(requests) from marts.fct_usage_hourly")  # every org's rows
    assert as_role(dsn, "bi_reader", "select user_id, requests from marts.fct_top_users_monthly limit 1")
    for sql in ("select provider_cost_usd from marts.fct_usage_hourly",  # a money column of a usage mart
                "select cost_usd from marts.fct_top_users_monthly",
                "select * from marts.fct_usage_hourly",  # which includes it
                "select count(*) from marts.fct_cost_daily",  # a money mart
                "select count(*) from marts.fct_org_monthly_spend",
                "select count(*) from raw.usage_events", "select count(*) from raw.quarantine",
                "select count(*) from build.fct_usage_hourly", "select count(*) from staging.stg_usage__events",
                "delete from marts.fct_usage_hourly"):
        assert refused(dsn, "bi_reader", sql), sql


def test_finance_reads_the_money_and_not_the_raw_data(secured):
    dsn, _ = secured
    total = "select round(sum(cost_usd), 6) from marts.fct_cost_daily"
    assert as_role(dsn, "finance_reader", total) == query(dsn, total) and query(dsn, total)[0][0] > 0
    assert as_role(dsn, "finance_reader", "select count(*) from marts.fct_org_monthly_spend")[0][0] > 0
    for sql in ("select count(*) from raw.usage_events", "select count(*) from build.fct_cost_daily",
                "update marts.fct_cost_daily set cost_usd = 0"):
        assert refused(dsn, "finance_reader", sql), sql


def test_an_analyst_reads_only_their_orgs_rows(secured):
    dsn, _ = secured
    mine = "select org_id, count(*), sum(requests) from marts.fct_usage_hourly group by 1 order by 1"
    assert as_role(dsn, ANALYST, mine) == [r for r in query(dsn, mine) if r[0] == "org_acme"]
    assert len(query(dsn, mine)) > 1  # there were other orgs to hide
    users = "select distinct org_id from marts.fct_user_activity_daily"
    assert as_role(dsn, ANALYST, users) == [("org_acme",)]
    for sql in ("select count(*) from marts.fct_cost_daily",
                "select count(*) from marts.fct_experiment_results",  # no org_id: every org's figures
                "select count(*) from raw.usage_events", "select * from access.analyst_orgs"):
        assert refused(dsn, ANALYST, sql), sql


def test_the_pipeline_login_writes_raw_build_and_marts(secured):
    dsn, _ = secured
    for sql in ("select count(*) from raw.usage_events", "select count(*) from build.fct_usage_hourly",
                "update marts.fct_usage_hourly set requests = requests where org_id = 'org_acme'",
                "insert into raw.extract_watermarks values ('x', now(), now())"):
        as_role(dsn, "pipeline", sql)  # rolled back: it may, that is all


def test_a_mart_published_anew_gets_the_same_rules(secured):
    dsn, _ = secured
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("drop table marts.fct_usage_daily")  # the next publication creates it again, whole
    conn.close()
    assert run_hours(START + timedelta(hours=23), START + timedelta(hours=23)).success
    assert query(dsn, "select count(distinct org_id) from marts.fct_usage_daily")[0][0] > 1
    assert as_role(dsn, ANALYST, "select distinct org_id from marts.fct_usage_daily") == [("org_acme",)]
    assert refused(dsn, "bi_reader", "select provider_cost_usd from marts.fct_usage_daily")
    assert as_role(dsn, "bi_reader", "select count(distinct org_id) from marts.fct_usage_daily") == \
        query(dsn, "select count(distinct org_id) from marts.fct_usage_daily")
