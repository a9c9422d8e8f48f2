"""The semantic layer, queried by name as a user would (`warehouse metrics query ...`, MetricFlow's mf):
each metric equals the figure computed here from the landing files, or the mart's own figure, and it
reads the published marts, not a run's rows waiting for their gates in schema build."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.conftest import event_day, landed_events, query, run_hours
from tests.test_performance import percentile_cont

pytestmark = pytest.mark.db

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 2


@pytest.fixture(scope="module")
def loaded(server_dsn, dbt_manifest, tmp_path_factory):
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    generate(root, START, DAYS, 1500, seed=33, defects=Defects(0, 0, 0, 0))  # every line one valid event
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(days=DAYS) - timedelta(hours=1), instance).success
    assert materialize_reports(instance).success
    events = landed_events(root)
    yield dsn, events, tmp_path_factory.mktemp("metrics")
    mp.undo()


def metrics(out_dir, metric_names: str, group_by: str) -> list[dict]:
    """`warehouse metrics query --metrics ... --group-by ... --csv FILE`, the rows of its CSV."""
    from orchestration.cli import main

    out = out_dir / f"{metric_names}-{group_by}.csv".replace(",", "+")
    assert main(["metrics", "query", "--metrics", metric_names, "--group-by", group_by, "--csv", str(out)]) == 0
    return list(csv.DictReader(out.open()))


def test_requests_errors_tokens_and_cost_by_day_and_org(loaded):
    dsn, events, out = loaded
    files = defaultdict(lambda: [0, 0, 0])
    for e in events:
        counts = files[(event_day(e).isoformat(), e["org_id"])]
        counts[0] += 1
        counts[1] += e["status"] == "error"
        counts[2] += (e["input_tokens"] or 0) + (e["output_tokens"] or 0)
    mart = {(str(day), org): float(cost) for day, org, cost in query(
        dsn, "select day_utc, org_id, sum(cost_usd) from marts.fct_cost_daily group by 1, 2")}

    rows = metrics(out, "requests,errors,error_rate,tokens,cost_usd", "metric_time__day,org")
    got = {(r["metric_time__day"][:10], r["org"]): r for r in rows}
    assert set(got) == set(files) == set(mart)
    for key, (requests, errors, tokens) in files.items():
        row = got[key]
        assert (float(row["requests"]), float(row["errors"]), float(row["tokens"])) == (requests, errors, tokens)
        assert float(row["error_rate"]) == pytest.approx(errors / requests)
        assert float(row["cost_usd"]) == pytest.approx(mart[key], rel=1e-9)
    assert sum(float(r["cost_usd"]) for r in rows) > 0


def test_latency_percentiles_are_exact_over_the_events(loaded):
    _, events, out = loaded
    latencies = defaultdict(list)
    for e in events:
        latencies[(event_day(e).isoformat(), e["model"])].append(e["latency_ms"])
    rows = metrics(out, "latency_p50_ms,latency_p95_ms", "metric_time__day,request__model")
    assert {(r["metric_time__day"][:10], r["request__model"]) for r in rows} == set(latencies)
    for r in rows:
        values = latencies[(r["metric_time__day"][:10], r["request__model"])]
        assert float(r["latency_p50_ms"]) == pytest.approx(percentile_cont(values, 0.50))
        assert float(r["latency_p95_ms"]) == pytest.approx(percentile_cont(values, 0.95))


def test_active_users_per_day_and_the_last_day_of_a_month(loaded):
    _, events, out = loaded
    users = defaultdict(set)
    for e in events:
        users[(event_day(e), e["org_id"])].add(e["user_id"])
    days = sorted({day for day, _ in users})
    orgs = {org for _, org in users}
    last = days[-1]

    def active(org, day, window):
        return len(set().union(*(users[(d, org)] for d in days if day - timedelta(days=window) < d <= day)))

    by_day = metrics(out, "dau,wau,mau", "metric_time__day,org")
    assert len(by_day) == len(days) * len(orgs)
    for r in by_day:
        day, org = datetime.fromisoformat(r["metric_time__day"][:10]).date(), r["org"]
        assert (float(r["dau"]), float(r["wau"]), float(r["mau"])) == (
            active(org, day, 1), active(org, day, 7), active(org, day, 30))
    # a month is not the sum of its days: it shows its last day's figures
    by_month = {r["org"]: r for r in metrics(out, "dau,wau", "metric_time__month,org")}
    for org in orgs:
        month = by_month[org]
        assert (float(month["dau"]), float(month["wau"])) == (active(org, last, 1), active(org, last, 7))
        assert float(by_month[org]["wau"]) > float(by_month[org]["dau"])  # two days: the week holds more users


def test_spend_against_budget_equals_the_monthly_mart(loaded):
    dsn, _, out = loaded
    # the first UTC hours are the last of May in the orgs west of UTC: each org month is its own row
    mart = {(str(month), org): (float(spent), budget) for org, month, spent, budget in query(
        dsn, "select org_id, month_local, month_to_date_usd, budget_usd from marts.fct_org_monthly_spend")}
    assert {month for month, _ in mart} == {"2026-05-01", "2026-06-01"}
    rows = metrics(out, "month_spend_usd,budget_usd,budget_used_share", "metric_time__month,org")
    assert {(r["metric_time__month"][:10], r["org"]) for r in rows} == set(mart)
    for r in rows:
        spent, budget = mart[(r["metric_time__month"][:10], r["org"])]
        assert float(r["month_spend_usd"]) == pytest.approx(spent)
        if budget is None:
            assert r["budget_used_share"] == ""
        else:
            assert float(r["budget_used_share"]) == pytest.approx(spent / float(budget))


def test_metrics_read_the_published_marts_not_the_rows_a_gate_holds_back(loaded):
    dsn, _, out = loaded
    before = {r["org"]: float(r["cost_usd"]) for r in metrics(out, "cost_usd", "org")}
    # a run's rows in schema build that its gates have not passed (yet): BI must not see them
    query(dsn, "update build.fct_cost_daily set cost_usd = cost_usd + 1000 returning 1")
    try:
        after = {r["org"]: float(r["cost_usd"]) for r in metrics(out, "cost_usd", "org")}
    finally:
        query(dsn, "update build.fct_cost_daily set cost_usd = cost_usd - 1000 returning 1")
    assert after == before
    published = dict(query(dsn, "select org_id, sum(cost_usd)::float from marts.fct_cost_daily group by 1"))
    assert after == pytest.approx(published)
