"""dbt models as Dagster assets, incremental on the hourly partition window."""


import json
import os
from datetime import datetime

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.dbt_project import prepare_manifest, warehouse_dbt_project
from orchestration.partitions import hourly_partitions
from orchestration.resources import WarehouseResource


def window_vars(start: datetime, end: datetime) -> dict[str, str]:
    """The landing-hour window a dbt run refreshes, as the vars the incremental models read."""
    return {"min_date": start.isoformat(), "max_date": end.isoformat()}


@dbt_assets(
    manifest=prepare_manifest(refresh=bool(os.environ.get("DAGSTER_IS_DEV_CLI"))),
    project=warehouse_dbt_project,
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # a 30-day backfill is one dbt call
)
def usage_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    window = context.partition_time_window
    os.environ.update(warehouse.dbt_env())  # profiles.yml reads the connection from the environment
    args = ["build", "--vars", json.dumps(window_vars(window.start, window.end))]
    yield from dbt.cli(args, context=context).stream()
