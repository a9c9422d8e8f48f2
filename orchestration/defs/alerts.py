"""Sensors that alert on-call: failed runs, failed blocking checks, budget crossings, anomalies and
critical insights (freshness is in freshness.py). Each opens an alert once when its condition appears
and resolves it once when it goes (orchestration/alerting), and delivers what is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from ingestion.schema import ensure_schema
from orchestration.alerting import conditions
from orchestration.alerting.channels import senders
from orchestration.alerting.outbox import Outbox, deliver_pending
from orchestration.alerting.routes import Routes
from orchestration.resources import WarehouseResource
from orchestration.settings import alert_channel_configured

Judge = Callable[..., list[conditions.Condition] | None]


def default_status() -> dg.DefaultSensorStatus:
    """Alert sensors run from the start once a channel is set (stop them in the UI to silence them)."""
    return dg.DefaultSensorStatus.RUNNING if alert_channel_configured() else dg.DefaultSensorStatus.STOPPED


def alert_tick(warehouse: WarehouseResource, judges: dict[str, Judge], now: datetime | None = None,
               more: Callable[[Outbox, datetime], list[str]] | None = None) -> str:
    """Judge each kind, open and resolve its alerts, deliver what is due; returns a line for the tick."""
    now = now or datetime.now(UTC)
    settings = warehouse.settings
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur)
        outbox = Outbox(conn, Routes.load(settings.alert_routes), settings.alert_channels, settings.environment,
                        settings.ui_url)
        sent = [line for kind, judge in judges.items() for line in outbox.reconcile(kind, judge(conn, now), now)]
        if more:
            sent += [line for line in more(outbox, now) if line]
        delivered, failed = deliver_pending(conn, senders(settings), now)
    finally:
        conn.close()
    return (f"{len(sent)} alert messages queued, {delivered} delivered"
            + (f", {failed} failed (retried later; see audit.alert_deliveries)" if failed else ""))


WAREHOUSE_JUDGES: dict[str, Judge] = {
    "failed_check": lambda conn, now: conditions.failed_checks(conn, now),
    "budget": lambda conn, now: conditions.budget_crossings(conn),
    "anomaly": lambda conn, now: conditions.anomalies(conn),
    "insight": lambda conn, now: conditions.critical_insights(conn),
}


def resolve_failed_runs(instance: dg.DagsterInstance) -> Callable[[Outbox, datetime], list[str]]:
    """Resolves each failed-run alert whose job has since succeeded on the same partition."""
    def resolve(outbox: Outbox, now: datetime) -> list[str]:
        lines = []
        for alert_id, _, details in outbox.open_alerts("failed_run"):
            values = details["values"]
            failed = instance.get_run_record_by_id(values["run_id"])
            after = failed.update_timestamp if failed else None
            successes = instance.get_run_records(
                dg.RunsFilter(job_name=values["job"], statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=after),
                limit=100)
            if any(conditions.failed_run(r.dagster_run).key == conditions.failed_run_key(values) for r in successes):
                lines.append(outbox.resolve(alert_id, now))
        return lines
    return resolve


@dg.sensor(minimum_interval_seconds=120, default_status=default_status(),
           description="Alerts on failed blocking checks, budget crossings (50/80/100 %), anomalies and critical "
                       "insights, once when each starts and once when it resolves; resolves failed-run alerts; "
                       "retries undelivered alerts (audit.alert_deliveries).")
def warehouse_alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    line = alert_tick(warehouse, WAREHOUSE_JUDGES, more=resolve_failed_runs(context.instance))
    return dg.SkipReason(line)


@dg.run_failure_sensor(name="failed_run_alert_sensor", default_status=default_status(),
                       description="Alerts once per failed job and partition; the alert resolves when that job "
                                   "next succeeds on that partition.")
def failed_run_alert_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    condition = conditions.failed_run(context.dagster_run, context.failure_event.message or "")
    context.log.info(alert_tick(warehouse, {}, more=lambda outbox, now: [outbox.open(condition, now) or ""]))
