"""Insight rules on a real PostgreSQL, each on a small hand-built case of nine days, with the money or
requests at stake computed here from the events and their costs, and the status carried across days."""

from __future__ import annotations

import csv
import gzip
import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import landing_path
from tests.conftest import query, run_hours

pytestmark = [pytest.mark.db, pytest.mark.one_server]  # CI: the embedded server only (see .ci/run)

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 9
LAST = (START + timedelta(days=DAYS - 1)).date()


def event(org: str, service: str, provider: str, model: str, at: datetime, *, input_tokens: int, output_tokens: int,
          latency_ms: float, cached: int = 0, failed: bool = False) -> dict:
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{org}:{model}:{at.isoformat()}")),
        "event_time": at.isoformat(), "org_id": org, "user_id": f"{org}_u1", "session_id": None,
        "service": service, "provider": provider, "model": model,
        "input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": 0 if failed else output_tokens,
        "latency_ms": latency_ms, "status": "error" if failed else "success",
        "error_code": "server_error" if failed else None, "http_status": 500 if failed else 200,
    }


def hand_built_events() -> list[dict]:
    events = []
    for d in range(DAYS):
        noon = START + timedelta(days=d, hours=12)
        for i in range(120):  # cheaper_model: gpt-4o-mini does chat as well as gpt-4o, for far less
            at = noon + timedelta(seconds=10 * i)
            events.append(event("org_cheap", "chat", "openai", "gpt-4o", at, input_tokens=1000, output_tokens=200,
                                latency_ms=1000 + i))
            events.append(event("org_cheap", "chat", "openai", "gpt-4o-mini", at + timedelta(seconds=1),
                                input_tokens=1000, output_tokens=200, latency_ms=900 + i))
        for i in range(121):  # prompt_caching: long prompts, one in 121 partly read from the cache
            events.append(event("org_cache", "summarize", "anthropic", "claude-sonnet-4-20250514",
                                noon + timedelta(seconds=10 * i), input_tokens=8000, output_tokens=100,
                                latency_ms=2000, cached=4000 if i == 0 else 0))
        for i in range(200):  # regressions: 1 % errors and ~1 s, then 15 % errors and ~3 s on the last day
            slow = d == DAYS - 1
            latency = (2000 + 5 * i) if slow else (800 + 2 * i)
            events.append(event("org_flaky", "chat", "google", "gemini-2.0-flash", noon + timedelta(seconds=10 * i),
                                input_tokens=500, output_tokens=50, latency_ms=latency, failed=i < (30 if slow else 2)))
        for i in range(40):  # budget_burn: about $10 a day against a $60 budget (12:00 in Tokyo)
            events.append(event("org_initech", "batch", "openai", "gpt-4o",
                                START + timedelta(days=d, hours=3, seconds=30 * i),
                                input_tokens=100_000, output_tokens=1000, latency_ms=5000))
        if d < 3:  # unpriced_model: three days, then gone
            for i in range(10):
                events.append(event("org_mystery", "chat", "acme-internal", "mystery-model-x",
                                    noon + timedelta(seconds=10 * i), input_tokens=300, output_tokens=30,
                                    latency_ms=400))
    return events


@pytest.fixture(scope="module")
def insights(server_dsn, dbt_manifest, tmp_path_factory):
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    events = hand_built_events()
    by_hour: dict[datetime, list[str]] = {}
    for e in events:
        hour = datetime.fromisoformat(e["event_time"]).replace(minute=0, second=0)
        by_hour.setdefault(hour, []).append(json.dumps(e))
    for hour, lines in by_hour.items():
        path = landing_path(root, hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(days=DAYS, hours=-1), instance).success
    assert materialize_reports(instance).success
    yield dsn, events, instance
    mp.undo()


def findings(dsn: str, rule: str, org: str | None = None) -> dict[date, dict]:
    rows = query(dsn, """select day, subject, status, severity, monthly_savings_usd, at_risk_usd, affected_requests,
                                impact_score, confidence, evidence, title, recommendation
                         from marts.insights where rule = %s and org_id = coalesce(%s, org_id) order by day""",
                 (rule, org))
    keys = ("subject", "status", "severity", "monthly_savings_usd", "at_risk_usd", "affected_requests",
            "impact_score", "confidence", "evidence", "title", "recommendation")
    out = {}
    for day, *values in rows:
        assert day not in out, f"two {rule} findings on {day}"
        out[day] = dict(zip(keys, values, strict=True))
    return out


def event_costs(dsn: str, org: str) -> list[tuple]:
    """(day, model, cost, uncached input tokens, input cost, cache-read tokens, cache-read cost) per event."""
    return query(dsn, """select day_utc, model, cost_usd, uncached_input_tokens, cost_input_usd,
                                cache_read_tokens, cost_cache_read_usd
                         from marts.fct_event_costs where org_id = %s""", (org,))


def in_week_to(day: date, d: date) -> bool:
    return day - timedelta(days=6) <= d <= day


def test_cheaper_model_saving_is_the_expensive_requests_at_the_cheaper_cost(insights):
    dsn, *_ = insights
    found = findings(dsn, "cheaper_model")
    assert set(found) == {START.date() + timedelta(days=d) for d in range(DAYS)}
    costs = event_costs(dsn, "org_cheap")
    for day, f in found.items():
        week = [c for c in costs if in_week_to(day, c[0])]
        big = [float(c[2]) for c in week if c[1] == "gpt-4o"]
        small = [float(c[2]) for c in week if c[1] == "gpt-4o-mini"]
        weekly = sum(big) - len(big) * sum(small) / len(small)
        assert float(f["monthly_savings_usd"]) == pytest.approx(weekly * 30 / 7, rel=1e-6)
        assert f["subject"] == "org_cheap|chat|openai|gpt-4o" and f["affected_requests"] == len(big)
        assert f["impact_score"] == round(100 * weekly / (sum(big) + sum(small)))
        assert f["evidence"]["alternative_model"] == "gpt-4o-mini" and f["confidence"] == 100
        assert f["status"] == ("new" if day == START.date() else "ongoing")
    assert "gpt-4o-mini" in found[LAST]["recommendation"]


def test_prompt_caching_saving_is_half_the_uncached_prompt_at_the_cache_discount(insights):
    dsn, *_ = insights
    found = findings(dsn, "prompt_caching", "org_cache")
    assert set(found) == {START.date() + timedelta(days=d) for d in range(DAYS)}
    costs = event_costs(dsn, "org_cache")
    input_price = sum(float(c[4]) for c in costs) / sum(c[3] for c in costs)  # USD per token, as charged
    read_price = sum(float(c[6]) for c in costs) / sum(c[5] for c in costs)
    assert read_price < input_price
    for day, f in found.items():
        uncached = sum(c[3] for c in costs if in_week_to(day, c[0]))
        assert float(f["monthly_savings_usd"]) == pytest.approx(uncached * 0.5 * (input_price - read_price) * 30 / 7,
                                                                rel=1e-6)
        assert f["evidence"]["cache_read_share"] == pytest.approx(4000 / (121 * 8000))


def percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_error_rate_regression_counts_the_failures_beyond_the_usual_rate(insights):
    dsn, events, _ = insights
    found = findings(dsn, "error_rate_regression")
    assert list(found) == [LAST]  # only the last day; 1 % every day before is no regression
    f = found[LAST]
    mine = [e for e in events if e["org_id"] == "org_flaky"]
    today = [e for e in mine if e["event_time"].startswith(str(LAST))]
    before = [e for e in mine if LAST - timedelta(days=7) <= date.fromisoformat(e["event_time"][:10]) < LAST]
    usual = (sum(e["status"] == "error" for e in before) + 1) / (len(before) + 2)
    failed = sum(e["status"] == "error" for e in today)
    assert (failed, len(before)) == (30, 1400)
    assert f["affected_requests"] == round(failed - len(today) * usual)
    assert f["evidence"]["baseline_error_rate"] == pytest.approx(usual)
    assert f["status"] == "new" and f["severity"] == "critical" and f["confidence"] == 100


def test_latency_regression_counts_the_requests_slower_than_the_usual_p95(insights):
    dsn, events, _ = insights
    found = findings(dsn, "latency_regression")
    assert list(found) == [LAST]
    f = found[LAST]
    mine = [e for e in events if e["org_id"] == "org_flaky"]
    today = [e["latency_ms"] for e in mine if e["event_time"].startswith(str(LAST))]
    before = [e["latency_ms"] for e in mine
              if LAST - timedelta(days=7) <= date.fromisoformat(e["event_time"][:10]) < LAST]
    usual_p95 = percentile_cont(before, 0.95)
    assert f["evidence"]["baseline_latency_p95_ms"] == pytest.approx(usual_p95, rel=0.01)
    assert f["evidence"]["latency_p95_ms"] == pytest.approx(percentile_cont(today, 0.95), rel=0.01)
    slower = sum(v > usual_p95 for v in today)
    assert f["affected_requests"] == round(slower - 0.05 * len(today)) == 190


def test_budget_burn_forecasts_the_overrun_at_the_last_complete_days_rate(insights):
    dsn, *_ = insights
    found = findings(dsn, "budget_burn")
    budget = next(float(r["budget_usd"]) for r in csv.DictReader((ROOT / "reference" / "org_budgets.csv").open())
                  if r["org_id"] == "org_initech" and not r["month"])
    # org_initech is in Tokyo: its events at 03:00 UTC fall on the same local day
    daily = {}
    for day, *_ in query(dsn, "select distinct day_utc from marts.fct_event_costs where org_id = 'org_initech'"):
        daily[day] = float(query(dsn, """select sum(cost_usd) from marts.fct_event_costs
                                        where org_id = 'org_initech' and day_utc = %s""", (day,))[0][0])
    assert len(daily) == DAYS
    spent = 0.0
    for day in sorted(daily):
        spent += daily[day]
        n = day.day  # the month starts with the data: days observed = days elapsed
        before = [daily[d] for d in daily if day - timedelta(days=7) <= d < day]  # up to 7 complete days before
        rate = sum(before) / len(before) if before else spent  # the first day: its own spend
        forecast = spent + rate * (30 - n)
        f = found[day]
        assert float(f["at_risk_usd"]) == pytest.approx(forecast - budget, rel=1e-6)
        assert f["severity"] == ("critical" if spent >= budget else "warning")
        assert f["impact_score"] == min(100, round(100 * (forecast - budget) / budget))
    assert [f["status"] for f in found.values()] == ["new"] + ["ongoing"] * (DAYS - 1)


def test_unpriced_model_is_new_then_ongoing_then_resolved(insights):
    dsn, *_ = insights
    found = findings(dsn, "unpriced_model")
    days = [START.date() + timedelta(days=d) for d in range(4)]
    assert list(found) == days
    assert [found[d]["status"] for d in days] == ["new", "ongoing", "ongoing", "resolved"]
    assert [found[d]["affected_requests"] for d in days] == [10, 10, 10, None]
    assert found[days[0]]["impact_score"] == 100 and found[days[3]]["severity"] == "info"


def test_a_rebuild_gives_the_same_findings_under_the_same_ids(insights):
    dsn, _, instance = insights
    before = query(dsn, "select insight_id, rule, day, status from marts.insights order by 1")
    assert materialize_reports(instance).success
    after = query(dsn, "select insight_id, rule, day, status from marts.insights order by 1")
    assert after == before and len({r[0] for r in after}) == len(after)


def test_budget_crossings_critical_insights_and_stale_marts_page_on_call(insights, monkeypatch):
    """The alerts the published marts raise, through a real listener: each budget threshold on the day the
    spend computed here from the priced events crossed it, the critical findings of the last day, and the
    marts' age; then each resolves once."""
    from orchestration.alerting import conditions
    from orchestration.defs.alerts import alert_tick
    from orchestration.resources import WarehouseResource
    from tests.listeners import HttpListener

    dsn, events, _ = insights
    listener = HttpListener().up()
    monkeypatch.setenv("WAREHOUSE_ALERT_WEBHOOK_URL", listener.url)
    judges = {"budget": lambda conn, now: conditions.budget_crossings(conn),
              "insight": lambda conn, now: conditions.critical_insights(conn),
              "marts_freshness": lambda conn, now: conditions.marts_freshness(conn, now, timedelta(hours=3))}
    try:
        alert_tick(WarehouseResource(), judges)
        alert_tick(WarehouseResource(), judges)  # the same conditions: no second page
        pages = {(p["kind"], p["key"]): p for p in listener.received}
        assert len(pages) == len(listener.received)

        budget = next(float(r["budget_usd"]) for r in csv.DictReader((ROOT / "reference" / "org_budgets.csv").open())
                      if r["org_id"] == "org_initech" and not r["month"])
        spent, crossed = 0.0, {}
        for day, cost in query(dsn, """select day_utc, sum(cost_usd) from marts.fct_event_costs
                                      where org_id = 'org_initech' group by 1 order by 1"""):
            spent += float(cost)
            for pct in (50, 80, 100):
                if spent >= budget * pct / 100:
                    crossed.setdefault(pct, day)
        assert set(crossed) == {50, 80, 100}  # about $10 a day against $60 over nine days
        for pct, day in crossed.items():
            page = pages.pop(("budget", f"org_initech:2026-06:{pct}"))
            assert page["values"]["crossed_on"] == day.isoformat()
            assert page["severity"] == {50: "info", 80: "warning", 100: "critical"}[pct]
            assert float(page["values"]["month_to_date_usd"]) == pytest.approx(spent, rel=1e-9)
            assert f"org_initech crossed {pct} % of its June 2026 budget on {day}" in page["summary"]

        # the last day: org_flaky fails 15 % of its requests at 2.5x its usual p95; org_initech is over budget
        assert {k for k in pages if k[0] == "insight"} == {
            ("insight", "error_rate_regression:org_flaky|chat|google|gemini-2.0-flash"),
            ("insight", "latency_regression:org_flaky|chat|google|gemini-2.0-flash"),
            ("insight", "budget_burn:org_initech")}

        stale = pages.pop(("marts_freshness", "marts"))
        newest = max(datetime.fromisoformat(e["event_time"]) for e in events).replace(minute=0, second=0)
        assert datetime.fromisoformat(stale["values"]["published_through"]) == newest + timedelta(hours=1)

        # a new month (no spend yet for June's thresholds), no critical finding, a longer freshness limit
        judges = {"budget": lambda conn, now: [], "insight": lambda conn, now: [],
                  "marts_freshness": lambda conn, now: conditions.marts_freshness(conn, now, timedelta(days=9999))}
        alert_tick(WarehouseResource(), judges)
        resolved = [p for p in listener.received if p["state"] == "resolved"]
        assert len(resolved) == len(listener.received) // 2 and all(p["duration_minutes"] == 0 for p in resolved)
    finally:
        listener.down()
