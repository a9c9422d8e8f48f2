"""The warehouse's time grain: hourly partitions in UTC, by the hour a file landed in."""

import os
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
