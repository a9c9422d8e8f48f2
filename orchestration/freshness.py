"""How fresh is the warehouse: the age of the newest event that reached raw.usage_events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Freshness:
    newest_event: datetime | None
    checked_at: datetime
    max_lag: timedelta

    @property
    def lag(self) -> timedelta | None:
        return None if self.newest_event is None else self.checked_at - self.newest_event

    @property
    def is_stale(self) -> bool:
        return self.lag is None or self.lag > self.max_lag

    def describe(self) -> str:
        if self.newest_event is None:
            return "no usage events in the warehouse yet"
        minutes = int(self.lag.total_seconds() // 60)
        state = "stale" if self.is_stale else "fresh"
        return (f"warehouse is {state}: newest event {self.newest_event:%Y-%m-%d %H:%M} UTC is {minutes} min old "
                f"(limit {int(self.max_lag.total_seconds() // 60)} min)")


def measure(conn, now: datetime, max_lag: timedelta) -> Freshness:
    with conn.cursor() as cur:
        cur.execute("select to_regclass('raw.usage_events') is not null")
        if not cur.fetchone()[0]:
            return Freshness(None, now, max_lag)
        cur.execute("select max(event_time) from raw.usage_events")
        return Freshness(cur.fetchone()[0], now, max_lag)
