"""Freshness: a check on the raw asset, and a sensor that alerts on-call when data stops arriving or the
marts BI reads stop being published."""


from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.alerting import conditions
from orchestration.check_history import record_check
from orchestration.defs.alerts import alert_tick, default_status
from orchestration.defs.ingestion import usage_events
from orchestration.freshness import measure
from orchestration.resources import WarehouseResource


def _measure(warehouse: WarehouseResource):
    max_lag = timedelta(minutes=warehouse.settings.freshness_max_lag_minutes)
    conn = warehouse.connect()
    try:
        return measure(conn, datetime.now(UTC), max_lag)
    finally:
        conn.close()


@dg.asset_check(asset=usage_events, name="raw_usage_events_freshness",
                description="Newest event is at most WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES old (default 120).")
def raw_usage_events_freshness(context: dg.AssetCheckExecutionContext,
                               warehouse: WarehouseResource) -> dg.AssetCheckResult:
    freshness = _measure(warehouse)
    conn = warehouse.connect()
    try:  # kept with every other check result, for the history on-call reads
        record_check(conn, check_name="raw_usage_events_freshness", asset_key="raw/usage_events", partition=None,
                     success=not freshness.is_stale, severity="warn" if freshness.is_stale else "none",
                     observed={"newest_event": freshness.newest_event,
                               "lag_minutes": freshness.lag.total_seconds() / 60 if freshness.lag else None},
                     run_id=context.run.run_id, summary=freshness.describe())
    finally:
        conn.close()
    return dg.AssetCheckResult(
        passed=not freshness.is_stale,
        severity=dg.AssetCheckSeverity.WARN,
        description=freshness.describe(),
        metadata={"lag_minutes": dg.MetadataValue.float(freshness.lag.total_seconds() / 60
                                                         if freshness.lag else -1.0)},
    )


@dg.sensor(minimum_interval_seconds=300, default_status=default_status(),
           description="Alerts once when raw events or the published marts go stale and once when they recover "
                       "(WAREHOUSE_FRESHNESS_MAX_LAG_MINUTES, WAREHOUSE_MARTS_MAX_LAG_MINUTES).")
def freshness_alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    settings = warehouse.settings
    raw_lag = timedelta(minutes=settings.freshness_max_lag_minutes)
    marts_lag = timedelta(minutes=settings.marts_max_lag_minutes)
    line = alert_tick(warehouse, {
        "raw_freshness": lambda conn, now: conditions.raw_freshness(conn, now, raw_lag),
        "marts_freshness": lambda conn, now: conditions.marts_freshness(conn, now, marts_lag),
    })
    return dg.SkipReason(f"{_measure(warehouse).describe()}; {line}")
