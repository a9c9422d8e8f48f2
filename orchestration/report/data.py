"""What the nightly report shows for one UTC day, read from the published marts (schema marts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

TREND_DAYS = 31  # the charts' window, ending on the report's day (31: its whole month is in it)
TOP = 10


@dataclass(frozen=True)
class ReportData:
    day: date
    headline: dict  # the day's figures: spend, requests, error rate, p95 latency, month to date
    tables: dict[str, pd.DataFrame]  # name -> the table behind a chart or a list (written as <name>.csv)


def _frame(cur, sql: str, params: dict) -> pd.DataFrame:
    cur.execute(sql, params)
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def read(conn, day: date) -> ReportData:
    params = {"day": day, "first": day - timedelta(days=TREND_DAYS - 1), "week": day - timedelta(days=6),
              "month": day.replace(day=1), "top": TOP}
    with conn.cursor() as cur:
        tables = {
            # spend per UTC day and org over the trend window
            "spend_per_day": _frame(cur, """
                select day_utc as day, org_id, sum(cost_usd)::float as cost_usd, sum(requests)::bigint as requests
                from marts.fct_cost_daily where day_utc between %(first)s and %(day)s
                group by 1, 2 order by 1, 2""", params),
            # each org's month (its own time zone) holding the report's day: spend, forecast, budget, and
            # the month before's final figure beside it
            "budgets": _frame(cur, """
                select distinct on (org_id) org_id, month_local, as_of_day,
                       month_to_date_usd::float as month_to_date_usd,
                       forecast_month_end_usd::float as forecast_usd, budget_usd::float as budget_usd,
                       budget_used_share::float as budget_used_share, budget_crossing_day,
                       budget_crossing_is_projected, previous_month_usd::float as previous_month_usd
                from marts.fct_org_monthly_spend where month_local <= %(day)s
                order by org_id, month_local desc""", params),
            "top_models": _frame(cur, """
                select provider, model, sum(requests)::bigint as requests, sum(cost_usd)::float as cost_usd
                from marts.fct_cost_daily where day_utc between %(week)s and %(day)s
                group by 1, 2 order by cost_usd desc nulls last, requests desc limit %(top)s""", params),
            "top_users": _frame(cur, """
                select org_id, user_id, team, requests, cost_usd::float as cost_usd, cost_rank
                from marts.fct_top_users_monthly where month_local = %(month)s
                order by cost_usd desc nulls last, org_id, user_id limit %(top)s""", params),
            "performance_trend": _frame(cur, """
                select day_utc as day, sum(requests)::bigint as requests, sum(errors)::bigint as errors,
                       (sum(errors)::float / nullif(sum(requests), 0)) as error_rate,
                       marts.histogram_quantile(marts.array_concat_agg(latency_buckets),
                                                marts.array_concat_agg(latency_counts), 0.95) as latency_p95_ms
                from marts.fct_performance_daily where day_utc between %(first)s and %(day)s
                group by 1 order by 1""", params),
            "insights": _frame(cur, """
                select org_id, severity, rule, title, recommendation, monthly_savings_usd::float as monthly_savings_usd,
                       at_risk_usd::float as at_risk_usd, status
                from marts.insights where day = %(day)s and status <> 'resolved'
                order by severity = 'critical' desc, coalesce(monthly_savings_usd, 0) + coalesce(at_risk_usd, 0) desc,
                         org_id, rule limit %(top)s""", params),
            "anomalies": _frame(cur, """
                select hour_utc, org_id, provider, model, metric, observed::float as observed,
                       expected::float as expected, score::float as score, severity
                from marts.fct_anomalies_hourly where hour_utc >= %(day)s and hour_utc < %(day)s + 1
                order by abs(score) desc limit 20""", params),
        }
    spend, trend = tables["spend_per_day"], tables["performance_trend"]
    today = spend[spend["day"] == day]
    perf = trend[trend["day"] == day]
    month = spend[spend["day"] >= params["month"]]
    headline = {
        "spend_usd": float(today["cost_usd"].sum()),
        "requests": int(today["requests"].sum()),
        "error_rate": float(perf["error_rate"].iloc[0]) if len(perf) and perf["error_rate"].notna().iloc[0] else None,
        "latency_p95_ms": float(perf["latency_p95_ms"].iloc[0]) if len(perf) and perf["latency_p95_ms"].notna().iloc[0]
        else None,
        "month_to_date_usd": float(month["cost_usd"].sum()),
        "orgs": int(today["org_id"].nunique()),
    }
    return ReportData(day, headline, tables)
