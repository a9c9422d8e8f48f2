"""The warehouse's time grain: hourly partitions in UTC, by the hour a file landed in."""

import dagster as dg

# First hour the warehouse knows about; earlier history needs a new start date here.
HISTORY_START = "2026-01-01-00:00"

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")
