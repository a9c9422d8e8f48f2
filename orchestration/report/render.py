"""Write one day's report: reports/<date>/index.html and a CSV per table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import jinja2

from orchestration.report import charts
from orchestration.report.data import ReportData, read

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent),
                               autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                               lstrip_blocks=True)


@dataclass(frozen=True)
class Report:
    day: date
    folder: Path
    page: Path
    headline: dict
    csv_files: tuple[Path, ...]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def usd(value) -> str:
    return "–" if _missing(value) else f"${value:,.2f}"


def pct(value) -> str:
    return "–" if _missing(value) else f"{value:.1%}"


def ms(value) -> str:
    return "–" if _missing(value) else f"{value:,.0f} ms"


def render(conn, day: date, reports_dir: Path, environment: str) -> Report:
    """Read the day's figures from the marts and write its folder (replacing an earlier one of that day)."""
    data: ReportData = read(conn, day)
    folder = reports_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    csv_files = []
    for name, frame in data.tables.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        csv_files.append(path)
    html = TEMPLATES.get_template("template.html.j2").render(
        day=day, environment=environment, generated_at=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        headline=data.headline, tables=data.tables, charts=charts.html_snippets(data), usd=usd, pct=pct, ms=ms)
    page = folder / "index.html"
    page.write_text(html)
    return Report(day, folder, page, data.headline, tuple(csv_files))
