"""The retention job: raw events WAREHOUSE_RAW_RETENTION_DAYS, hourly rollups WAREHOUSE_HOURLY_RETENTION_DAYS."""


from datetime import UTC, datetime

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.retention import apply_retention


@dg.op(description="Delete raw events, quarantined rows and hourly rollups older than their windows.")
def purge_expired_rows(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    settings = warehouse.settings
    conn = warehouse.connect()
    try:
        purged = apply_retention(conn, datetime.now(UTC), settings.raw_retention_days,
                                 settings.hourly_retention_days)
    finally:
        conn.close()
    for p in purged:
        context.log.info(f"{p.table}: deleted {p.rows:,} rows older than {p.cutoff:%Y-%m-%d %H:%M} UTC")


@dg.job(description="Nightly retention of raw events and hourly rollups.")
def retention_job():
    purge_expired_rows()
