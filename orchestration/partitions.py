"""The warehouse's time grain: hourly partitions in UTC, by the hour a file landed in."""

import os
from dataclasses import dataclass
from datetime import date

import dagster as dg

from orchestration.settings import SettingError

DEFAULT_HISTORY_START = "2026-01-01"


def history_start() -> str:
    """WAREHOUSE_HISTORY_START: the first day the partitions hold (read when the code location loads)."""
    value = os.environ.get("WAREHOUSE_HISTORY_START", "").strip() or DEFAULT_HISTORY_START
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise SettingError(f"WAREHOUSE_HISTORY_START={value!r} is not a day like 2024-01-01: set it to the first "
                           f"day of your history, or unset it for {DEFAULT_HISTORY_START}") from None
    return f"{day.isoformat()}-00:00"


# First hour the warehouse knows about: landing hours before it cannot be partitions
HISTORY_START = history_start()

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")


@dataclass(frozen=True)
class RunHours:
    """The landing hours a run covers: its partition or partition range. Only raw/usage_events is partitioned;
    the assets built from it read the run's hours from here, so a 30-day backfill writes one materialization
    per mart, not one per mart and hour (bench/RESULTS.md: 20,000 Dagster events, over half the run)."""
    first: str  # hourly partition keys
    last: str

    @property
    def label(self) -> str:
        return self.first if self.first == self.last else f"{self.first}...{self.last}"

    @property
    def window(self) -> dg.TimeWindow:
        return dg.TimeWindow(hourly_partitions.time_window_for_partition_key(self.first).start,
                             hourly_partitions.time_window_for_partition_key(self.last).end)

    @property
    def keys(self) -> list[str]:
        return hourly_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(self.first, self.last))


def run_hours_of(context) -> RunHours | None:
    """The landing hours of the run `context` belongs to (None: a run of no hours)."""
    from orchestration.tags import RANGE_END_TAG, RANGE_START_TAG

    tags = context.run.tags
    if "dagster/partition" in tags:
        return RunHours(tags["dagster/partition"], tags["dagster/partition"])
    if RANGE_START_TAG in tags:
        return RunHours(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    return None


def hours_of_run(context, what: str) -> RunHours:
    """The run's landing hours; a run of none (`what` selected alone in the UI) is stopped with what to do."""
    hours = run_hours_of(context)
    if hours is None:
        raise dg.Failure(description=f"{what} is built for landing hours: launch hourly_usage_job (or "
                         "late_event_refresh_job) with a partition or a range of partitions, not it alone")
    return hours
