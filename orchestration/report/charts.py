"""The report's charts, drawn with Plotly; plotly.js is embedded once, so the page works offline."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from orchestration.report.data import ReportData

LAYOUT = {"template": "plotly_white", "height": 360, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
          "legend": {"orientation": "h", "y": -0.2}}


def spend_per_day(data: ReportData) -> go.Figure:
    frame = data.tables["spend_per_day"]
    figure = go.Figure([go.Bar(name=org, x=rows["day"], y=rows["cost_usd"]) for org, rows in frame.groupby("org_id")])
    return figure.update_layout(barmode="stack", title="Spend per day and org (USD, UTC days)", **LAYOUT)


def budgets(data: ReportData) -> go.Figure:
    frame = data.tables["budgets"]
    figure = go.Figure([
        go.Bar(name="month to date", x=frame["org_id"], y=frame["month_to_date_usd"]),
        go.Bar(name="forecast month end", x=frame["org_id"], y=frame["forecast_usd"], opacity=0.5),
        go.Scatter(name="budget", x=frame["org_id"], y=frame["budget_usd"], mode="markers",
                   marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3, "color": "crimson"}}),
    ])
    return figure.update_layout(barmode="group", title="Spend against budget, this month (USD, org time zone)",
                                **LAYOUT)


def top_models(data: ReportData) -> go.Figure:
    frame = data.tables["top_models"].iloc[::-1]
    figure = go.Figure(go.Bar(x=frame["cost_usd"], y=frame["provider"] + "/" + frame["model"], orientation="h"))
    return figure.update_layout(title="Top models by cost, last 7 days (USD)", **LAYOUT)


def top_users(data: ReportData) -> go.Figure:
    frame = data.tables["top_users"].iloc[::-1]
    figure = go.Figure(go.Bar(x=frame["cost_usd"], y=frame["org_id"] + " · " + frame["user_id"], orientation="h"))
    return figure.update_layout(title="Top users by cost, this month (USD)", **LAYOUT)


def performance(data: ReportData) -> go.Figure:
    frame = data.tables["performance_trend"]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Scatter(name="error rate", x=frame["day"], y=frame["error_rate"], mode="lines+markers"))
    figure.add_trace(go.Scatter(name="p95 latency (ms)", x=frame["day"], y=frame["latency_p95_ms"],
                                mode="lines+markers"), secondary_y=True)
    figure.update_yaxes(title_text="error rate", tickformat=".1%", secondary_y=False)
    figure.update_yaxes(title_text="p95 latency (ms)", secondary_y=True)
    return figure.update_layout(title="Error rate and p95 latency per day", **LAYOUT)


CHARTS = {"spend_per_day": spend_per_day, "budgets": budgets, "top_models": top_models, "top_users": top_users,
          "performance_trend": performance}


def html_snippets(data: ReportData) -> dict[str, str]:
    """Each chart as an HTML fragment; the first carries plotly.js, inline."""
    snippets = {}
    for n, (name, draw) in enumerate(CHARTS.items()):
        snippets[name] = draw(data).to_html(full_html=False, include_plotlyjs=n == 0, div_id=f"chart-{name}",
                                            config={"displayModeBar": False, "responsive": True})
    return snippets
