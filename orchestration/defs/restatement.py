"""Price restatements: when the catalog or the overrides change the price of events already costed,
rebuild the cost marts of those event hours; fct_event_costs records old cost, new cost and delta
per day, org and model in audit.cost_restatements."""

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from orchestration.defs.dbt import usage_marts
from orchestration.defs.late_data import hour_ranges
from orchestration.defs.reference import CATALOG, FILES
from orchestration.tags import DBT_RUN_TAGS, RANGE_END_TAG, RANGE_START_TAG, REASON_TAG, RESTATEMENT_TAG

cost_restatement_job = dg.define_asset_job(
    "cost_restatement_job", tags=DBT_RUN_TAGS, executor_def=dg.in_process_executor,  # as hourly_usage_job
    selection=build_dbt_asset_selection([usage_marts], dbt_select="fct_event_costs+")
    | dg.AssetSelection.assets(["marts", "publication"]),
    description="Reprice the events of the requested event hours and rebuild the cost marts above them "
    "(requested by price_restatement_sensor).",
)

WATCHED = (CATALOG, FILES[0])  # the catalog and the price overrides


@dg.sensor(job=cost_restatement_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads restate_hours from each load of the price catalog or overrides and restates them.")
def price_restatement_sensor(context: dg.SensorEvaluationContext):
    cursor = dict(item.split("=") for item in context.cursor.split(",")) if context.cursor else {}
    hours: set[str] = set()
    seen = []
    for key in WATCHED:
        name = key.to_user_string()
        after = int(cursor[name]) if name in cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=100, ascending=True).records
        for record in records:
            entry = record.asset_materialization.metadata.get("restate_hours")
            hours.update(entry.value if entry else [])
            seen.append(record.storage_id)
        if records:
            cursor[name] = str(records[-1].storage_id)
    new_cursor = ",".join(f"{k}={v}" for k, v in sorted(cursor.items()))
    if not seen:
        return dg.SkipReason("no new load of prices")
    if not hours:
        return dg.SensorResult(skip_reason="prices reloaded, no costed event changed price", cursor=new_cursor)
    last = max(seen)
    requests = [dg.RunRequest(
        run_key=f"restate-{last}-{first}-{final}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: final, RESTATEMENT_TAG: f"prices-{last}-{first}",
              REASON_TAG: "prices changed"})
        for first, final in hour_ranges(list(hours))]
    context.log.info(f"prices changed for events of {len(hours)} hours: {len(requests)} restatement runs")
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
