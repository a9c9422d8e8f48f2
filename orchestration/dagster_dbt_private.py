"""The one place that reads private parts of dagster-dbt (`dagster_dbt.asset_utils`, pinned with dagster in
pyproject.toml). The public @dbt_assets builds the same assets and test checks, but takes no further
checks, and this project adds one per dbt unit test; tests/test_definitions.py compares what these
functions build with what @dbt_assets builds, so an upgrade that changes them fails there, loudly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    build_dbt_specs,
    default_description_fn,
    get_asset_check_key_for_test,
)


def dbt_specs(translator: DagsterDbtTranslator, manifest: Mapping[str, Any], select: str, exclude: str,
              project: DbtProject) -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec]]:
    """The asset and test-check specs @dbt_assets would make of the selection."""
    specs, checks = build_dbt_specs(translator=translator, manifest=manifest, select=select, exclude=exclude,
                                    selector="", io_manager_key=None, project=project)
    return list(specs), list(checks)


def selection_tags(select: str, exclude: str) -> dict[str, str]:
    """The op tags DbtCliResource.cli reads the selection from, as @dbt_assets sets them."""
    return {DAGSTER_DBT_SELECT_METADATA_KEY: select, **({DAGSTER_DBT_EXCLUDE_METADATA_KEY: exclude} if exclude else {})}


def check_key_of_test(manifest: Mapping[str, Any], translator: DagsterDbtTranslator, unique_id: str,
                      project: DbtProject) -> dg.AssetCheckKey | None:
    """The asset check a dbt test reports as (None: a test dagster-dbt models as no check)."""
    return get_asset_check_key_for_test(manifest, translator, unique_id, project)


def description_without_sql(dbt_resource_props: Mapping[str, Any]) -> str:
    """dagster-dbt's description of a node, without the raw SQL it appends by default."""
    return default_description_fn(dbt_resource_props, display_raw_sql=False)
