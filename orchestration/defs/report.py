"""The nightly report: an asset per UTC day (reports/<date>/index.html and CSVs), a schedule at 06:00 in
WAREHOUSE_REPORT_TIMEZONE for the day before, and the link sent through the alert channels."""


from datetime import UTC, date, timedelta

import dagster as dg

from orchestration.alerting.channels import senders
from orchestration.partitions import HISTORY_START
from orchestration.resources import WarehouseResource
from orchestration.settings import report_timezone

# today is a partition too (end_offset): a report of the day so far can be asked for on demand
daily_partitions = dg.DailyPartitionsDefinition(start_date=HISTORY_START[:10], timezone="UTC", end_offset=1)

READS = ["fct_cost_daily", "fct_org_monthly_spend", "fct_top_users_monthly", "fct_performance_daily", "insights",
         "fct_anomalies_hourly"]


@dg.asset(key=["reports", "nightly_report"], partitions_def=daily_partitions, group_name="delivery",
          deps=[dg.AssetKey(["marts", "publication"]), *(dg.AssetKey(["marts", name]) for name in READS)],
          kinds={"html"}, owners=["team:data-platform"],
          description="The day's report for managers: spend per day and org against budget with the forecast, "
                      "top models and users by cost, error rate and p95 latency, the day's top insights and "
                      "anomalies; one HTML page with charts and a CSV per table, read from the published marts.")
def nightly_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from orchestration.report.deliver import link, send
    from orchestration.report.render import render

    settings = warehouse.settings
    day = date.fromisoformat(context.partition_key)
    conn = warehouse.connect()
    try:
        report = render(conn, day, settings.reports_dir, settings.environment)
    finally:
        conn.close()
    outcome = send(report, senders(settings), settings.environment, settings.reports_url)
    for channel, result in outcome.items():
        if result != "sent":
            context.log.warning(f"the report was not sent by {channel}: {result}; it is at {report.page}")
    h = report.headline
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.url(link(report, settings.reports_url)),
        "folder": dg.MetadataValue.path(str(report.folder)),
        "spend_usd": dg.MetadataValue.float(h["spend_usd"]),
        "requests": dg.MetadataValue.int(h["requests"]),
        "month_to_date_usd": dg.MetadataValue.float(h["month_to_date_usd"]),
        "sent": dg.MetadataValue.json(outcome or {"(no channel set)": "-"}),
    })


nightly_report_job = dg.define_asset_job("nightly_report_job", selection=[nightly_report],
                                         partitions_def=daily_partitions,
                                         description="Render (and send) the nightly report of one UTC day.")


@dg.schedule(job=nightly_report_job, cron_schedule="0 6 * * *", execution_timezone=report_timezone(),
             description="At 06:00 in WAREHOUSE_REPORT_TIMEZONE, the report of the last complete UTC day.")
def nightly_report_schedule(context: dg.ScheduleEvaluationContext):
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)
