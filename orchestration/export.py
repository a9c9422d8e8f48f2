"""Incident export: an org's failed requests and anomalies over a time range, as one CSV for a post-mortem.

Every value from the user (org, range, cap) is a bound query parameter, never SQL text; the file holds
at most `limit` rows and says so when there were more.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_LIMIT = 100_000
MAX_LIMIT = 1_000_000
COLUMNS = ("kind", "time_utc", "org_id", "user_id", "service", "provider", "model", "status", "error_code",
           "http_status", "latency_ms", "metric", "observed", "expected", "score", "severity", "event_id")

# failed requests from staging (gated rows only) and anomalies from the published mart, one shape
QUERY = """
select * from (
    select 'error_event' as kind, event_time as time_utc, org_id, user_id, service, provider, model, status,
           error_code, http_status, latency_ms, null as metric, null::float as observed, null::float as expected,
           null::float as score, null as severity, event_id
    from staging.stg_usage__events
    where org_id = %(org)s and event_time >= %(start)s and event_time < %(end)s and status <> 'success'
    union all
    select 'anomaly', hour_utc, org_id, null, null, provider, model, null, null, null, null, metric, observed,
           expected, score, severity, anomaly_id
    from marts.fct_anomalies_hourly
    where org_id = %(org)s and hour_utc >= %(start)s and hour_utc < %(end)s
) as incidents
order by time_utc, kind, event_id
limit %(limit)s
"""


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int
    truncated: bool  # more rows matched than the cap


class ExportError(ValueError):
    """The request cannot be exported; the message says what to change."""


def export_incidents(conn, org: str, start: datetime, end: datetime, out_dir: Path,
                     limit: int = DEFAULT_LIMIT) -> Export:
    if not 0 < limit <= MAX_LIMIT:
        raise ExportError(f"--limit {limit} must be between 1 and {MAX_LIMIT:,}")
    if end <= start:
        raise ExportError(f"--to {end:%Y-%m-%d %H:%M} must be after --from {start:%Y-%m-%d %H:%M}")
    with conn.cursor() as cur:
        cur.execute(QUERY, {"org": org, "start": start, "end": end, "limit": limit + 1})
        rows = cur.fetchall()
    truncated = len(rows) > limit
    rows = rows[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    safe_org = "".join(c if c.isalnum() or c in "-_" else "_" for c in org)[:64]  # a file name, whatever the id
    path = out_dir / f"incidents-{safe_org}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return Export(path, len(rows), truncated)


def parse_time(text: str, option: str) -> datetime:
    """A day (2026-11-30) or an hour (2026-11-30T14) or a time, in UTC unless it names its zone."""
    from datetime import UTC

    try:
        value = datetime.fromisoformat(text if len(text) != 13 else f"{text}:00")
    except ValueError:
        raise ExportError(f"{option} {text!r} is not a day or time like 2026-11-30 or 2026-11-30T14:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
