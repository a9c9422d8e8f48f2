"""The nightly report as a manager sees it: rendered by headless Chromium, every chart drawn, and the
figures on the page equal to what is computed here from the events."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from orchestration.runs import materialize_hours, materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.browser import rendered_dom, screenshot
from tests.conftest import query
from tests.listeners import HttpListener, SmtpListener

pytestmark = [pytest.mark.db, pytest.mark.one_server]

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 3
DAY = date(2026, 6, 3)  # the report's day: the last of three


@pytest.fixture(scope="module")
def reported(server_dsn, dbt_manifest, tmp_path_factory):
    from orchestration.runs import materialize_report
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    reports = tmp_path_factory.mktemp("reports")
    state = tmp_path_factory.mktemp("state")  # `warehouse` commands set DAGSTER_HOME under it; undone after
    for name, value in {"WAREHOUSE_DSN": dsn, "WAREHOUSE_LANDING_DIR": str(root), "WAREHOUSE_REPORTS_DIR": str(reports),
                        "WAREHOUSE_ENVIRONMENT": "test-env", "WAREHOUSE_STATE_DIR": str(state),
                        "DAGSTER_HOME": str(state / "dagster_home")}.items():
        mp.setenv(name, value)
    generate(root, START, DAYS, 3000, seed=5, defects=Defects(0, 0, 0, 0))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert materialize_hours(START, START + timedelta(days=DAYS, hours=-1), instance).success
    assert materialize_reports(instance).success
    webhook, smtp = HttpListener().up(), SmtpListener()
    mp.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", webhook.url)
    mp.setenv("WAREHOUSE_SMTP_HOST", "127.0.0.1")
    mp.setenv("WAREHOUSE_SMTP_PORT", str(smtp.port))
    mp.setenv("WAREHOUSE_ALERT_EMAIL_TO", "managers@example.com")
    try:
        result = materialize_report(DAY, instance)
        assert result.success
    finally:
        webhook.down()
        smtp.stop()
    page = reports / DAY.isoformat() / "index.html"
    try:
        dom = rendered_dom(page)  # skips the module without a browser: the settings above go back first
    except BaseException:
        mp.undo()
        raise
    yield dsn, page, dom, instance, result, webhook.received, smtp.messages
    mp.undo()


def figure(dom: str, name: str) -> str:
    [value] = re.findall(rf'data-figure="{name}">([^<]*)<', dom)
    return value


def money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def test_every_chart_is_drawn_by_the_browser(reported):
    _, _, dom, *_ = reported
    charts = dict(re.findall(r'id="chart-(\w+)"(.*?)(?=id="chart-|\Z)', dom, flags=re.S))
    assert set(charts) == {"spend_per_day", "budgets", "top_models", "top_users", "performance_trend"}
    for name, html in charts.items():
        assert 'class="main-svg"' in html, f"{name}: no chart was drawn"
        marks = re.findall(r'<path class="(?:point|js-line)[^"]*"[^>]* d="M[^"]{8,}"', html) + \
            re.findall(r'<g class="point"><path d="M[^"]{8,}"', html)
        assert marks, f"{name}: the chart has no bar, point or line"
    # one bar per org and day in the spend chart
    bars = re.findall(r'<g class="point"><path d="M[^"]+"', charts["spend_per_day"])
    assert len(bars) == len(query(reported[0], "select distinct day_utc, org_id from marts.fct_cost_daily"))


def test_the_figures_on_the_page_are_the_events(reported):
    dsn, page, dom, *_ = reported
    [(spend, requests)] = query(dsn, """select sum(cost_usd), count(*) from marts.fct_event_costs
                                        where day_utc = %s""", (DAY,))
    assert money(figure(dom, "spend_usd")) == pytest.approx(float(spend), abs=0.005)
    assert figure(dom, "requests") == f"{requests:,}"
    [(events, errors, p95)] = query(dsn, """select count(*), count(*) filter (where status <> 'success'),
                                                   percentile_cont(0.95) within group (order by latency_ms)
                                            from raw.usage_events where event_time >= %s and event_time < %s""",
                                    (DAY, DAY + timedelta(days=1)))
    assert events == requests
    assert figure(dom, "error_rate") == f"{errors / events:.1%}"
    shown = float(figure(dom, "latency_p95_ms").replace(",", "").removesuffix(" ms"))
    assert shown == pytest.approx(p95, rel=0.02)  # the histogram's p95 is within 2 % of the exact one
    [(month,)] = query(dsn, "select sum(cost_usd) from marts.fct_event_costs where day_utc between %s and %s",
                       (DAY.replace(day=1), DAY))
    assert money(figure(dom, "utc_month_to_date_usd")) == pytest.approx(float(month), abs=0.005)
    # the CSV behind the spend chart holds each day's spend per org
    rows = list(csv.DictReader((page.parent / "spend_per_day.csv").open()))
    by_day = {}
    for r in rows:
        by_day[r["day"]] = by_day.get(r["day"], 0) + float(r["cost_usd"])
    for day, cost in query(dsn, "select day_utc, sum(cost_usd) from marts.fct_event_costs group by 1"):
        assert by_day[day.isoformat()] == pytest.approx(float(cost), abs=1e-6)
    assert sorted(p.name for p in page.parent.glob("*.csv")) == sorted(
        f"{n}.csv" for n in ("spend_per_day", "budgets", "top_models", "top_users", "performance_trend", "insights",
                             "anomalies"))


def test_each_org_is_shown_against_its_budget_with_the_month_before(reported):
    dsn, _, dom, *_ = reported
    for org, mtd, forecast in query(dsn, """select distinct on (org_id) org_id, month_to_date_usd,
                                                   forecast_month_end_usd from marts.fct_org_monthly_spend
                                            order by org_id, month_local desc"""):
        [row] = re.findall(rf'<tr data-org="{org}">(.*?)</tr>', dom, flags=re.S)
        assert money(figure(row, "month_to_date_usd")) == pytest.approx(float(mtd), abs=0.005)
        assert money(figure(row, "forecast_usd")) == pytest.approx(float(forecast), abs=0.005)


def test_the_report_is_linked_from_its_asset_and_sent(reported, tmp_path):
    _, page, _, instance, result, posted, mails = reported
    [materialization] = result.asset_materializations_for_node("reports__nightly_report")
    assert materialization.partition == DAY.isoformat()
    assert materialization.metadata["report"].value == page.resolve().as_uri()
    [message] = posted
    assert message["kind"] == "nightly_report" and message["link"] == page.resolve().as_uri()
    assert message["text"].startswith(f"[test-env] Nightly report for {DAY}: $")
    [mail] = mails
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"llm-usage-{DAY}.html" and "plotly" in attachment.get_content()
    shot = screenshot(page, tmp_path / "report.png")
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one



def test_an_incident_export_holds_the_orgs_failed_requests_in_the_range(reported, tmp_path):
    from orchestration.cli import main

    dsn, *_ = reported
    [(org,)] = query(dsn, "select org_id from raw.usage_events group by 1 order by count(*) desc limit 1")
    assert main(["export", "incidents", "--org", org, "--from", "2026-06-02", "--to", "2026-06-03T12",
                 "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("*.csv")
    rows = list(csv.DictReader(path.open()))
    expected = query(dsn, """select event_id from raw.usage_events where org_id = %s and status <> 'success'
                             and event_time >= '2026-06-02' and event_time < '2026-06-03 12:00+00'""", (org,))
    anomalies = query(dsn, """select count(*) from marts.fct_anomalies_hourly where org_id = %s
                              and hour_utc >= '2026-06-02' and hour_utc < '2026-06-03 12:00+00'""", (org,))[0][0]
    assert expected and sorted(r["event_id"] for r in rows if r["kind"] == "error_event") == sorted(
        e for (e,) in expected)
    assert sum(r["kind"] == "anomaly" for r in rows) == anomalies
    assert all(r["org_id"] == org and r["status"] != "success" for r in rows if r["kind"] == "error_event")


def test_an_incident_export_is_capped_and_takes_no_sql_from_its_input(reported, tmp_path, capsys):
    from orchestration.cli import main

    dsn, *_ = reported
    [(org,)] = query(dsn, "select org_id from raw.usage_events group by 1 order by count(*) desc limit 1")
    assert main(["export", "incidents", "--org", org, "--from", "2026-06-01", "--to", "2026-06-04", "--limit", "5",
                 "--out", str(tmp_path / "capped")]) == 0
    [path] = (tmp_path / "capped").glob("*.csv")
    assert len(list(csv.DictReader(path.open()))) == 5
    assert "capped at 5 rows: more matched, narrow the range" in capsys.readouterr().out
    sneaky = "x' or '1'='1"  # an org id that would match every org if it were spliced into the SQL
    assert main(["export", "incidents", "--org", sneaky, "--from", "2026-06-01", "--to", "2026-06-04",
                 "--out", str(tmp_path / "sneaky")]) == 0
    [path] = (tmp_path / "sneaky").glob("*.csv")
    assert list(csv.DictReader(path.open())) == []
    assert main(["export", "incidents", "--org", org, "--from", "2026-06-04", "--to", "2026-06-01"]) == 2
    assert "--to 2026-06-01 00:00 must be after --from 2026-06-04 00:00" in capsys.readouterr().err


def test_the_incident_export_job_takes_its_range_from_config(reported):
    from orchestration.definitions import defs

    dsn, _, _, instance, *_ = reported
    [(org,)] = query(dsn, "select org_id from raw.usage_events group by 1 order by count(*) desc limit 1")
    job = defs().resolve_job_def("incident_export_job")
    result = job.execute_in_process(instance=instance, run_config={"ops": {"export_incidents_csv": {"config": {
        "org": org, "start": "2026-06-01", "end": "2026-06-02", "limit": 3}}}})
    assert result.success
    rows = list(csv.DictReader(open(result.output_for_node("export_incidents_csv"))))
    assert len(rows) == 3 and all(r["org_id"] == org for r in rows)
