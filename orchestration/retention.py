"""Retention: drop what is older than its window, table by table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Purged:
    table: str
    cutoff: datetime
    rows: int


# (table, timestamp column, which window applies)
RETAINED = (
    ("raw.usage_events", "event_time", "raw"),
    ("raw.quarantine", "quarantined_at", "raw"),
    ("marts.fct_usage_hourly", "hour_utc", "hourly"),
)


def apply_retention(conn, now: datetime, raw_days: int, hourly_days: int) -> list[Purged]:
    """Delete rows older than their window; tables not built yet are skipped."""
    windows = {"raw": timedelta(days=raw_days), "hourly": timedelta(days=hourly_days)}
    purged = []
    with conn, conn.cursor() as cur:
        for table, column, window in RETAINED:
            cur.execute("select to_regclass(%s) is not null", (table,))
            if not cur.fetchone()[0]:
                continue
            cutoff = now - windows[window]
            cur.execute(f"delete from {table} where {column} < %s", (cutoff,))
            purged.append(Purged(table, cutoff, cur.rowcount))
    return purged
