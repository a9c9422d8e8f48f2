"""A dashboard spec (dashboards/<name>.yml), its queries run for one org and window, drawn as one HTML page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import jinja2
import pandas as pd
import plotly.express as px
import yaml

from orchestration.settings import PROJECT_ROOT

DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"
CHARTS = ("figures", "bar", "line", "table")
WINDOWS = (7, 30, 90)  # days the reader may pick
LAYOUT = {"template": "plotly_white", "height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
          "legend": {"orientation": "h", "y": -0.25}}


class DashboardError(ValueError):
    """A spec that cannot be drawn; the message names the file, the panel and what to fix."""


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    chart: str
    sql: str
    x: str | None = None
    y: str | None = None
    color: str | None = None


@dataclass(frozen=True)
class Spec:
    title: str
    panels: tuple[Panel, ...]


def load(path: Path) -> Spec:
    """Read and check a spec: every panel named once, a known chart, x and y for bar and line."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DashboardError(f"{path}: cannot be read as YAML ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("panels"), list) or not raw["panels"]:
        raise DashboardError(f"{path}: needs a title and a list of panels")
    panels, names = [], set()
    for i, item in enumerate(raw["panels"]):
        where = f"{path}: panel {item.get('name', i + 1) if isinstance(item, dict) else i + 1}"
        if not isinstance(item, dict) or not {"name", "title", "chart", "sql"} <= set(item):
            raise DashboardError(f"{where}: needs name, title, chart and sql")
        if item["chart"] not in CHARTS:
            raise DashboardError(f"{where}: chart '{item['chart']}' is not one of {', '.join(CHARTS)}")
        if item["chart"] in ("bar", "line") and not (item.get("x") and item.get("y")):
            raise DashboardError(f"{where}: a {item['chart']} chart needs x and y (columns of its query)")
        if item["name"] in names:
            raise DashboardError(f"{where}: a second panel of that name")
        names.add(item["name"])
        panels.append(Panel(**{k: item.get(k) for k in Panel.__dataclass_fields__}))
    return Spec(str(raw.get("title", path.stem)), tuple(panels))


def window(cur, days: int) -> tuple[date, date] | None:
    """The `days` UTC days ending on the newest day in the marts (None: nothing published yet)."""
    cur.execute("select max(day_utc) from marts.fct_usage_daily")
    last = cur.fetchone()[0]
    return None if last is None else (last - timedelta(days=days - 1), last)


def orgs(cur) -> list[str]:
    cur.execute("select distinct org_id from marts.fct_usage_daily order by 1")
    return [r[0] for r in cur.fetchall()]


def run(cur, spec: Spec, org: str | None, first_day: date, last_day: date) -> dict[str, pd.DataFrame]:
    params = {"org": org, "first_day": first_day, "last_day": last_day}
    frames = {}
    for panel in spec.panels:
        cur.execute(panel.sql, params)
        frames[panel.name] = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    return frames


def chart_html(panel: Panel, frame: pd.DataFrame) -> str:
    """A bar or line panel as a Plotly div (plotly.js comes once, from the page's head)."""
    frame = frame.astype({panel.y: float})  # numeric columns arrive as Decimal
    draw = px.bar if panel.chart == "bar" else px.line
    figure = draw(frame, x=panel.x, y=panel.y, color=panel.color, title=panel.title,
                  **({"markers": True} if panel.chart == "line" else {}))
    figure.update_layout(**LAYOUT)
    if len(frame) and isinstance(frame[panel.x].iloc[0], date):  # days: a tick a day (or a week), no hours
        days = frame[panel.x].nunique()
        figure.update_xaxes(tickformat="%b %d", dtick=86_400_000 * (1 if days <= 14 else 7))
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{panel.name}",
                          config={"responsive": True, "displaylogo": False})


def render(spec: Spec, frames: dict[str, pd.DataFrame], org: str | None, days: int, first_day: date,
           last_day: date, all_orgs: list[str], login: str) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True)
    panels = [{"panel": p, "frame": frames[p.name],
               "chart": chart_html(p, frames[p.name]) if p.chart in ("bar", "line") and len(frames[p.name]) else None}
              for p in spec.panels]
    return env.get_template("template.html.j2").render(
        spec=spec, panels=panels, org=org, days=days, windows=WINDOWS, first_day=first_day, last_day=last_day,
        orgs=all_orgs, login=login, shown=_shown)


def _shown(value, column: str = "") -> str:
    """A cell as people read it: dollars with cents, rates as percentages, milliseconds whole, counts with
    thousands separated, '-' for none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return str(value)
    number = float(value)
    if column.endswith("_usd"):
        return f"${number:,.2f}"
    if column.endswith(("_rate", "_share")):
        return f"{number:.2%}"
    if column.endswith("_ms") or number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.4g}"
