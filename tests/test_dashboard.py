"""The dashboard as BI users open it: served over HTTP, logged in as the read-only finance login, read in
headless Chromium; its figures checked against the landing files and the event-grain mart, its filters,
its refusal to write, and clear errors for a bad spec or request."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.browser import rendered_dom
from tests.conftest import landed_events, query, run_hours
from tests.test_performance import percentile_cont

pytestmark = pytest.mark.db

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 2
SPEC = Path(__file__).resolve().parent.parent / "dashboards" / "usage.yml"


@pytest.fixture(scope="module")
def served(server_dsn, dbt_manifest, tmp_path_factory):
    """Two days loaded and published, the logins made by `warehouse access`, the dashboard served."""
    from orchestration.cli import main
    from orchestration.dashboard.server import Dashboard, login_dsn, server
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root, state = tmp_path_factory.mktemp("landing"), tmp_path_factory.mktemp("state")
    for name, value in {"WAREHOUSE_DSN": dsn, "WAREHOUSE_LANDING_DIR": str(root), "WAREHOUSE_STATE_DIR": str(state),
                        "DAGSTER_HOME": str(state / "dagster_home"), "WAREHOUSE_FINANCE_PASSWORD": "finance-pw",
                        "WAREHOUSE_BI_PASSWORD": "bi-pw"}.items():
        mp.setenv(name, value)
    generate(root, START, DAYS, 1500, seed=12, defects=Defects(0, 0, 0, 0))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(days=DAYS, hours=-1), instance).success
    assert materialize_reports(instance).success
    assert main(["access"]) == 0
    board = Dashboard(SPEC, login_dsn(dsn, "finance_reader", "finance-pw"), "finance_reader")
    site = server(board, 0)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    events = landed_events(root)
    yield dsn, f"http://127.0.0.1:{site.server_port}", events, board
    site.shutdown()
    mp.undo()


def figure(dom: str, name: str) -> str:
    [value] = re.findall(rf'data-figure="{name}">([^<]*)<', dom)
    return value


def number(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace("%", ""))


def shown_events(dom: str, events: list[dict], org: str | None = None) -> list[dict]:
    """The events of the UTC days the page says it shows (and of its org)."""
    [(first, last)] = re.findall(r'id="window" data-first="([^"]+)" data-last="([^"]+)"', dom)
    return [e for e in events if first <= datetime.fromisoformat(e["event_time"]).astimezone(UTC).date().isoformat()
            <= last and (org is None or e["org_id"] == org)]


def test_every_panel_is_drawn_and_the_headline_matches_the_files(served):
    dsn, url, events, _ = served
    dom = rendered_dom(f"{url}/?days=7")
    charts = dict(re.findall(r'id="chart-(\w+)"(.*?)(?=id="chart-|id="panel-|\Z)', dom, flags=re.S))
    assert set(charts) == {"spend_per_day", "requests_per_day", "error_rate_per_day", "latency_p95_per_day"}
    for name, html in charts.items():
        assert 'class="main-svg"' in html, f"{name}: no chart was drawn"
    shown = shown_events(dom, events)
    assert len(shown) == len(events)  # the window ends on the newest day: both days are in it
    assert number(figure(dom, "requests")) == len(shown)
    errors = sum(e["status"] == "error" for e in shown)
    assert number(figure(dom, "error_rate")) == pytest.approx(100 * errors / len(shown), abs=0.005)
    [(spend,)] = query(dsn, "select sum(cost_usd) from marts.fct_event_costs")  # the event grain, not the rollup
    assert number(figure(dom, "spend_usd")) == pytest.approx(float(spend), abs=0.005)
    exact = percentile_cont([e["latency_ms"] for e in shown], 0.95)
    assert abs(number(figure(dom, "latency_p95_ms")) - exact) <= 0.01 * exact + 0.5  # histogram accuracy, whole ms
    assert re.search(r'id="login">finance_reader<', dom)


def test_an_org_filter_shows_that_org_only(served):
    _, url, events, _ = served
    dom = rendered_dom(f"{url}/?org=org_acme&days=30")
    assert number(figure(dom, "requests")) == len(shown_events(dom, events, "org_acme")) > 0
    users = re.findall(r'<section id="panel-top_users".*?</section>', dom, flags=re.S)[0]
    assert set(re.findall(r'data-column="org_id">([^<]*)<', users)) == {"org_acme"}
    assert 'value="org_acme" selected' in dom


def test_bad_requests_get_one_clear_line(served):
    _, url, *_ = served
    for path, status, message in (("/?days=5", 400, "days=5 is not one of 7, 30, 90"),
                                  ("/?org=org_nobody", 400, "org=org_nobody has no usage in the marts"),
                                  ("/nothing", 404, "no page /nothing")):
        with pytest.raises(HTTPError) as refused:
            urlopen(url + path, timeout=30)
        assert refused.value.code == status and message in refused.value.read().decode()


def test_the_dashboard_login_cannot_write(served, tmp_path):
    from orchestration.dashboard.server import Dashboard

    dsn, _, _, board = served
    spec = tmp_path / "writes.yml"
    spec.write_text("title: writes\npanels:\n  - {name: w, title: w, chart: table, "
                    "sql: \"delete from marts.fct_usage_daily returning 1\"}\n")
    status, html = Dashboard(spec, board.dsn, board.login).page({})
    assert status == 500 and "failed as finance_reader" in html
    assert query(dsn, "select count(*) > 0 from marts.fct_usage_daily") == [(True,)]


def test_a_bad_spec_names_the_file_and_the_panel(tmp_path):
    from orchestration.dashboard.page import DashboardError, load

    spec = tmp_path / "bad.yml"
    spec.write_text("title: t\npanels:\n  - {name: spend, title: s, chart: pie, sql: select 1}\n")
    with pytest.raises(DashboardError, match=r"bad.yml: panel spend: chart 'pie' is not one of figures, bar"):
        load(spec)
    spec.write_text("title: t\npanels:\n  - {name: spend, title: s, chart: bar, sql: select 1}\n")
    with pytest.raises(DashboardError, match=r"panel spend: a bar chart needs x and y"):
        load(spec)
    assert len(load(SPEC).panels) == 7  # the shipped spec passes its own checks
