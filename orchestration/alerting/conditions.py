"""What is wrong right now, kind by kind.

Each function reads the warehouse (or Dagster's run history) and returns the conditions that hold at
this moment; outbox.py turns a condition that appears into a firing alert and one that goes away
into a resolved one. A function returns None when it cannot judge (its mart is not built yet): the
alerts it opened earlier then stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from orchestration.freshness import measure

# what to do, one line per kind: docs/operations.md's "On-call runbook" says more
RUNBOOK = {
    "raw_freshness": "No new events reach raw.usage_events: check that files still land in WAREHOUSE_LANDING_DIR "
                     "and the application databases answer, then the last hourly_usage_job runs.",
    "marts_freshness": "BI reads old marts: open the last hourly_usage_job runs; a failed gate names its hour, fix "
                       "the file and re-deliver it, or `warehouse release HOUR`.",
    "failed_run": "Open the run, read the failed step's error, fix the cause and rerun its partitions (loaded "
                  "files are skipped).",
    "failed_check": "A blocking check kept its rows out of the marts: its summary names them; re-deliver a "
                    "corrected file, or `warehouse release HOUR` to quarantine them.",
    "budget": "Tell the org's owner; marts.insights lists its cheaper models and caching savings.",
    "anomaly": "Compare with the org's deploys and the provider's status page; marts.fct_anomalies_hourly has "
               "the hour and its baseline.",
    "insight": "Read the insight's recommendation in marts.insights and act on it or accept it.",
}
RUNBOOK_SECTION = "docs/operations.md#on-call-runbook"

BUDGET_SEVERITY = {50: "info", 80: "warning", 100: "critical"}
ANOMALY_WINDOW_HOURS = 3  # an anomaly is resolved once its series has had this many quiet published hours
CHECK_LOOKBACK = timedelta(days=7)  # older check results no longer open an alert


@dataclass(frozen=True)
class Condition:
    kind: str
    key: str  # what it is about: one open alert per (kind, key)
    severity: str  # critical, error, warning or info
    summary: str  # one line: what, how bad, against which limit
    subject: str  # the table, check, org or job
    values: dict = field(default_factory=dict)  # observed values and their limits
    link: str = ""  # path in the Dagster UI: the asset, its checks or the run


def asset_link(asset_key: str, view: str = "") -> str:
    return f"/assets/{quote(asset_key)}" + (f"?view={view}" if view else "")


def _exists(cur, relation: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (relation,))
    return cur.fetchone()[0]


def raw_freshness(conn, now: datetime, max_lag: timedelta) -> list[Condition]:
    freshness = measure(conn, now, max_lag)
    if not freshness.is_stale:
        return []
    return [Condition("raw_freshness", "raw/usage_events", "error", freshness.describe(), "raw.usage_events",
                      {"newest_event": freshness.newest_event, "lag_minutes": _minutes(freshness.lag),
                       "limit_minutes": _minutes(max_lag)}, asset_link("raw/usage_events"))]


def marts_freshness(conn, now: datetime, max_lag: timedelta) -> list[Condition] | None:
    with conn.cursor() as cur:
        if not _exists(cur, "marts.fct_usage_hourly"):
            return None
        cur.execute("select max(hour_utc) + interval '1 hour' from marts.fct_usage_hourly")
        published_through = cur.fetchone()[0]
    if published_through is not None and now - published_through <= max_lag:
        return []
    lag = None if published_through is None else now - published_through
    summary = ("the marts BI reads hold no hour yet" if lag is None else
               f"the marts BI reads end at {published_through:%Y-%m-%d %H:%M} UTC, {_minutes(lag)} min ago "
               f"(limit {_minutes(max_lag)} min)")
    return [Condition("marts_freshness", "marts", "error", summary, "marts.fct_usage_hourly",
                      {"published_through": published_through, "lag_minutes": _minutes(lag),
                       "limit_minutes": _minutes(max_lag)}, asset_link("marts/publication"))]


def failed_checks(conn, now: datetime) -> list[Condition]:
    """Blocking checks whose latest result (on any partition) failed: one alert per check."""
    with conn.cursor() as cur:
        cur.execute("""select distinct on (check_name) check_name, asset_key, partition_key, success, severity,
                              summary, observed, checked_at, run_id
                       from audit.check_results where checked_at > %s
                       order by check_name, checked_at desc, result_id desc""", (now - CHECK_LOOKBACK,))
        latest = cur.fetchall()
    conditions = []
    for check, asset, partition, success, severity, summary, observed, checked_at, run_id in latest:
        if success or severity != "error":
            continue
        where = f" on {partition}" if partition else ""
        conditions.append(Condition(
            "failed_check", check, "error", f"blocking check {check} of {asset} failed{where}: {summary}", check,
            {"asset": asset, "partition": partition, "observed": observed, "checked_at": checked_at,
             "run_id": run_id}, asset_link(asset, "checks")))
    return conditions


def budget_crossings(conn) -> list[Condition] | None:
    """Each org's latest month: one alert per budget threshold (50/80/100 %) its spend has crossed."""
    with conn.cursor() as cur:
        if not _exists(cur, "marts.fct_org_monthly_spend"):
            return None
        cur.execute("""select org_id, month_local, month_to_date_usd, budget_usd, budget_used_share,
                              forecast_month_end_usd, crossed_50_pct_on, crossed_80_pct_on, crossed_100_pct_on
                       from marts.fct_org_monthly_spend as s
                       where month_local = (select max(month_local) from marts.fct_org_monthly_spend
                                            where org_id = s.org_id)
                         and budget_usd > 0""")
        rows = cur.fetchall()
    conditions = []
    for org, month, spent, budget, share, forecast, *crossed_on in rows:
        for pct, day in zip((50, 80, 100), crossed_on, strict=True):
            if day is None:
                continue
            conditions.append(Condition(
                "budget", f"{org}:{month:%Y-%m}:{pct}", BUDGET_SEVERITY[pct],
                f"{org} crossed {pct} % of its {month:%B %Y} budget on {day}: ${spent:,.2f} of ${budget:,.2f} "
                f"({float(share):.0%}), forecast ${forecast:,.2f} by month end", org,
                {"month": month, "threshold_pct": pct, "crossed_on": day, "month_to_date_usd": spent,
                 "budget_usd": budget, "forecast_month_end_usd": forecast},
                asset_link("marts/fct_org_monthly_spend")))
    return conditions


def anomalies(conn, window_hours: int = ANOMALY_WINDOW_HOURS) -> list[Condition] | None:
    """Series (org, model, metric) with an anomaly in the newest `window_hours` published hours: one alert
    per series, at the worst severity of those hours (its latest hour of that severity)."""
    with conn.cursor() as cur:
        if not (_exists(cur, "marts.fct_anomalies_hourly") and _exists(cur, "marts.fct_usage_hourly")):
            return None
        cur.execute("""select distinct on (org_id, provider, model, metric)
                              org_id, provider, model, metric, hour_utc, observed, expected, score, severity
                       from marts.fct_anomalies_hourly
                       where hour_utc > (select max(hour_utc) from marts.fct_usage_hourly) - %s * interval '1 hour'
                       order by org_id, provider, model, metric, severity = 'critical' desc, hour_utc desc""",
                    (window_hours,))
        rows = cur.fetchall()
    return [Condition(
        "anomaly", f"{org}/{provider}/{model}/{metric}", severity,
        f"{metric} of {org} on {provider}/{model} at {hour:%Y-%m-%d %H:00} UTC: {observed:,.4g} against "
        f"{expected:,.4g} expected (score {score:+.1f})", org,
        {"hour_utc": hour, "metric": metric, "observed": observed, "expected": expected, "score": score},
        asset_link("marts/fct_anomalies_hourly")) for org, provider, model, metric, hour, observed, expected, score,
        severity in rows]


def critical_insights(conn) -> list[Condition] | None:
    """Critical findings of the newest day of insights, one alert per rule and subject."""
    with conn.cursor() as cur:
        if not _exists(cur, "marts.insights"):
            return None
        cur.execute("""select rule, subject, org_id, day, title, recommendation, monthly_savings_usd, at_risk_usd
                       from marts.insights
                       where day = (select max(day) from marts.insights) and severity = 'critical'
                         and status <> 'resolved'""")
        rows = cur.fetchall()
    return [Condition(
        "insight", f"{rule}:{subject}", "critical", f"{title} ({org}, {day}): {recommendation}", org,
        {"rule": rule, "day": day, "monthly_savings_usd": savings, "at_risk_usd": at_risk},
        asset_link("marts/insights")) for rule, subject, org, day, title, recommendation, savings, at_risk in rows]


def failed_run(run, error: str = "") -> Condition:
    """A failed Dagster run: one alert per job and partition, resolved by the next success of both."""
    partition = _partition_of(run.tags)
    where = f" ({partition})" if partition else ""
    why = f": {error.splitlines()[0][:300]}" if error.strip() else ""
    return Condition("failed_run", f"{run.job_name}{where}", "error", f"run of {run.job_name}{where} failed{why}",
                     run.job_name, {"run_id": run.run_id, "job": run.job_name, "partition": partition},
                     f"/runs/{run.run_id}")


def failed_run_key(values: dict) -> str:
    """The key failed_run gives, from an alert's stored values."""
    return f"{values['job']} ({values['partition']})" if values.get("partition") else values["job"]


def _partition_of(tags: dict) -> str:
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start}...{end}" if start else ""


def _minutes(delta: timedelta | None) -> int | None:
    return None if delta is None else int(delta.total_seconds() // 60)
