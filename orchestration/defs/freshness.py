"""Freshness: a check on the raw asset, and a sensor that alerts on-call when data stops arriving."""


import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.alerts import Alert, notifiers_from_settings
from orchestration.check_history import record_check
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


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Alerts once when the warehouse goes stale and once when it recovers.")
def freshness_alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    freshness = _measure(warehouse)
    state = "firing" if freshness.is_stale else "resolved"
    previous = json.loads(context.cursor)["state"] if context.cursor else "resolved"
    if state != previous:  # alert on changes only: one page per incident, not one per tick
        notifiers_from_settings(warehouse.settings.alert_webhook_url).send(Alert(
            kind="freshness", state=state, summary=freshness.describe(),
            details={"newest_event": str(freshness.newest_event), "checked_at": str(freshness.checked_at)}))
        context.log.log(40 if state == "firing" else 20, freshness.describe())
    context.update_cursor(json.dumps({"state": state}))
    return dg.SkipReason(freshness.describe())
