"""dbt models as Dagster assets: the rollups and marts, incremental on the hourly partition window; the
reports (tag `reports`: month-level tables rebuilt whole) after every run that changed them."""


import json
import os
from datetime import datetime

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.dbt_project import prepare_manifest, warehouse_dbt_project
from orchestration.partitions import hourly_partitions
from orchestration.resources import WarehouseResource

RESTATEMENT_TAG = "warehouse/restatement_id"


def window_vars(start: datetime, end: datetime, restatement_id: str | None = None) -> dict[str, str]:
    """The window a dbt run refreshes, as the vars the incremental models read: landing hours, or for a
    price restatement the event hours themselves (and the id its cost ledger rows carry)."""
    window = {"min_date": start.isoformat(), "max_date": end.isoformat()}
    if restatement_id:
        window |= {"window_kind": "event", "restatement_id": restatement_id}
    return window


MANIFEST = prepare_manifest(refresh=bool(os.environ.get("DAGSTER_IS_DEV_CLI")))


@dbt_assets(
    manifest=MANIFEST,
    project=warehouse_dbt_project,
    exclude="tag:reports",
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a 30-day backfill is one dbt call
)
def usage_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    window = context.partition_time_window
    os.environ.update(warehouse.dbt_env())  # profiles.yml reads the connection from the environment
    restatement_id = context.run.tags.get(RESTATEMENT_TAG)
    args = ["build", "--vars", json.dumps(window_vars(window.start, window.end, restatement_id))]
    yield from dbt.cli(args, context=context).stream()


@dbt_assets(manifest=MANIFEST, project=warehouse_dbt_project, select="tag:reports", name="cost_reports")
def cost_reports(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # unpartitioned: one rebuild covers every hour, so a 30-day backfill does not repeat it 720 times
    os.environ.update(warehouse.dbt_env())
    yield from dbt.cli(["build"], context=context).stream()
