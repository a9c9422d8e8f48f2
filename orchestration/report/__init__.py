"""The nightly report: one self-contained HTML page with charts, and a CSV of each table behind them.

data.py reads the published marts for a day; charts.py draws them with Plotly; render.py fills the Jinja
template (template.html.j2) and writes reports/<date>/; deliver.py sends the link through the alert channels.
"""
