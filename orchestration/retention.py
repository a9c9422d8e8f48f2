"""Retention: drop what is older than its window, table by table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ingestion.schema import day_partitions
from ingestion.validation import MAX_LATENESS


@dataclass(frozen=True)
class Purged:
    table: str
    cutoff: datetime
    rows: int


# (table, timestamp column, which window applies); raw.usage_events goes by whole day partitions
# the marts are kept twice: as dbt builds them (schema build) and as BI reads them (schema marts)
RETAINED = (
    ("raw.quarantine", "quarantined_at", "raw"),
    ("raw.retracted_event_hours", "landing_hour", "raw"),
    *((f"{schema}.fct_event_costs", "event_hour", "raw") for schema in ("build", "marts")),  # event-level
    *((f"{schema}.{table}", "hour_utc", "hourly") for schema in ("build", "marts")
      for table in ("fct_usage_hourly", "fct_cost_hourly", "fct_performance_hourly", "fct_anomalies_hourly")),
    *((f"{schema}.fct_sessions", "started_at", "hourly") for schema in ("build", "marts")),
)


def apply_retention(conn, now: datetime, raw_days: int, hourly_days: int) -> list[Purged]:
    """Delete rows older than their window; tables not built yet are skipped."""
    windows = {"raw": timedelta(days=raw_days), "hourly": timedelta(days=hourly_days)}
    purged = []
    with conn, conn.cursor() as cur:
        if _exists(cur, "raw.usage_events"):
            purged += _drop_raw_days(cur, now, windows["raw"])
        for table, column, window in RETAINED:
            if not _exists(cur, table):
                continue
            cutoff = now - windows[window]
            cur.execute(f"delete from {table} where {column} < %s", (cutoff,))
            purged.append(Purged(table, cutoff, cur.rowcount))
    return purged


def _exists(cur, table: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (table,))
    return cur.fetchone()[0]


def expired_raw_days(cur, now: datetime, window: timedelta) -> dict[date, str]:
    """The raw day partitions whose whole day is older than the window: {day: partition}. A day is kept
    until all of it has expired, so the raw layer holds between N and N+1 days. None before raw exists."""
    if not _exists(cur, "raw.usage_events"):
        return {}
    return {day: partition for day, partition in sorted(day_partitions(cur).items())
            if _day_end(day) <= now - window}


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), UTC)


def _drop_raw_days(cur, now: datetime, window: timedelta) -> list[Purged]:
    """Drop the expired raw day partitions (instant, no dead rows left); forget the ids of long-gone events."""
    cutoff = now - window
    purged = []
    for day, partition in expired_raw_days(cur, now, window).items():
        day_end = _day_end(day)
        cur.execute(f"select count(*) from {partition}")
        rows = cur.fetchone()[0]
        cur.execute(f"drop table {partition}")
        purged.append(Purged(partition, day_end, rows))
    # an id is remembered as long as its event could still be accepted again (MAX_LATENESS), so a
    # re-delivered old event stays a duplicate even when its raw day is gone
    forget_before = min(datetime.combine(cutoff.astimezone(UTC).date(), time(), UTC), now - MAX_LATENESS) \
        - timedelta(days=1)  # an event may be up to two hours younger than the hour it landed in
    cur.execute("""delete from raw.event_ids e using raw.ingestion_batches b
                   where e.batch_id = b.batch_id and b.landing_hour < %s""", (forget_before,))
    return purged
