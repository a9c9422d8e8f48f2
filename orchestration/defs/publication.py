"""Where data leaves for BI: the marts of a run are published only after every gate of the run passed."""


import dagster as dg

from orchestration.defs.dbt import MANIFEST, usage_marts
from orchestration.partitions import hourly_partitions
from orchestration.publication import PUBLISHED_SCHEMA, marts_in_manifest, publish
from orchestration.resources import WarehouseResource

MART_KEYS = [key for key in usage_marts.keys if key.path[0] == PUBLISHED_SCHEMA]


@dg.asset(
    key=["marts", "publication"],
    group_name="transform",
    deps=MART_KEYS,  # after the marts and their blocking checks: a failed check skips this step
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres"},
    description="Copies the mart rows this run rebuilt (schema build) into schema marts, which BI reads, in one "
    "transaction. It runs only when every blocking check of the run passed, so a failed gate leaves the "
    "published marts as they were. History in audit.publications.",
)
def publication(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    conn = warehouse.connect()
    try:
        copied = publish(conn, [m for m in marts_in_manifest(MANIFEST) if m.incremental], context.run.run_id)
    finally:
        conn.close()
    context.log.info("published " + (", ".join(f"{k} ({v:,} rows)" for k, v in copied.items() if v) or "nothing new"))
    return dg.MaterializeResult(metadata={
        "rows_published": dg.MetadataValue.int(sum(copied.values())),
        "rows_by_mart": dg.MetadataValue.json(copied),
    })
