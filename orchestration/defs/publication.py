"""Where data leaves for BI: the marts of a run are published only after every gate of the run passed."""


import dagster as dg

from orchestration.defs.dbt import MANIFEST, usage_marts
from orchestration.defs.quality import GATES
from orchestration.publication import marts_in_manifest, publish, release_build
from orchestration.resources import WarehouseResource

# Dagster holds a step back only for the blocking checks of the assets it depends on, so publication
# depends on every asset a gate looks at (raw, staging, marts) and on every model dbt builds in the run
# (their dbt tests): a failed check anywhere upstream skips it
GATED_KEYS = sorted({*usage_marts.keys, *(gate.asset for gate in GATES)}, key=lambda k: k.to_user_string())


@dg.asset(
    key=["marts", "publication"],
    group_name="publication",
    deps=GATED_KEYS,
    kinds={"postgres"},
    description="Copies the mart rows this run rebuilt (schema build) into schema marts, which BI reads, in one "
    "transaction. It runs only when every blocking check of the run passed, so a failed gate leaves the "
    "published marts as they were. History in audit.publications.",
)
def publication(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    conn = warehouse.connect()
    try:
        copied = publish(conn, [m for m in marts_in_manifest(MANIFEST) if m.incremental], context.run.run_id)
        release_build(conn, context.run.run_id)  # the next run may build now
    finally:
        conn.close()
    context.log.info("published " + (", ".join(f"{k} ({v:,} rows)" for k, v in copied.items() if v) or "nothing new"))
    return dg.MaterializeResult(metadata={
        "rows_published": dg.MetadataValue.int(sum(copied.values())),
        "rows_by_mart": dg.MetadataValue.json(copied),
    })
