"""dbt models as Dagster assets: the rollups and marts, incremental on the hourly partition window; the
reports (tag `reports`: whole-history tables rebuilt whole) once the runs that changed them are done.

dbt builds the marts in schema `build`; they are published to schema `marts` (what BI reads) only after
every gate of the run passed (orchestration/publication.py). Every dbt test, generic, singular and
unit, is a Dagster asset check on the model it tests, and its result is kept in audit.check_results.
"""


import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource

from orchestration.check_history import record_check
from orchestration.dagster_dbt_private import check_key_of_test, dbt_specs, description_without_sql, selection_tags
from orchestration.dbt_project import keep_partial_parse, prepare_manifest, warehouse_dbt_project
from orchestration.partitions import hours_of_run, run_hours_of
from orchestration.publication import (
    BUILD_SCHEMA,
    PUBLISHED_SCHEMA,
    Holder,
    acquire_build,
    marts_in_manifest,
    publish,
    release_build,
    restore,
)
from orchestration.resources import WarehouseResource
from orchestration.tags import RESTATEMENT_TAG

SAMPLE_ROWS = 5


def window_vars(start: datetime, end: datetime, restatement_id: str | None = None) -> dict[str, str]:
    """The window a dbt run refreshes, as the vars the incremental models read: landing hours, or for a
    price restatement the event hours themselves (and the id its cost ledger rows carry)."""
    window = {"min_date": start.isoformat(), "max_date": end.isoformat()}
    if restatement_id:
        window |= {"window_kind": "event", "restatement_id": restatement_id}
    return window


def window_env(window: dict[str, str]) -> dict[str, str]:
    """The window as the environment dbt reads it in (macros/run_window.sql): as --vars, a new window each hour
    made dbt parse the whole project again (5 s of every run, bench/RESULTS.md)."""
    return {f"WAREHOUSE_DBT_{name.upper()}": value for name, value in window.items()}


DEFAULT_OWNERS = ["team:data-platform"]  # a model's dbt meta (dagster: owners) names others


class WarehouseTranslator(DagsterDbtTranslator):
    """A mart's asset key and table name are where BI reads it (marts.<model>), though dbt writes it in build;
    raw.landing_hours (the gate status of each hour of raw/usage_events) is part of that asset, not a stub."""

    def get_asset_key(self, dbt_resource_props: dict[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "model" and dbt_resource_props.get("schema") == BUILD_SCHEMA:
            return dg.AssetKey([PUBLISHED_SCHEMA, dbt_resource_props["name"]])
        if dbt_resource_props.get("resource_type") == "source" and dbt_resource_props.get("name") == "landing_hours":
            return dg.AssetKey(["raw", "usage_events"])
        return super().get_asset_key(dbt_resource_props)

    def get_description(self, dbt_resource_props: dict[str, Any]) -> str:
        return description_without_sql(dbt_resource_props)  # the SQL is in the repo

    def get_metadata(self, dbt_resource_props: dict[str, Any]) -> dict[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        if dbt_resource_props.get("resource_type") == "model":
            schema = PUBLISHED_SCHEMA if dbt_resource_props.get("schema") == BUILD_SCHEMA else \
                dbt_resource_props.get("schema")
            metadata["dagster/table_name"] = f"{schema}.{dbt_resource_props['alias']}"  # what BI queries
        return metadata

    def get_owners(self, dbt_resource_props: dict[str, Any]) -> list[str]:
        return list(super().get_owners(dbt_resource_props) or DEFAULT_OWNERS)


TRANSLATOR = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))
MANIFEST = prepare_manifest(refresh=bool(os.environ.get("DAGSTER_IS_DEV_CLI")))


def _unit_test_specs(manifest: dict, asset_keys: set[dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    """dagster-dbt models generic and singular tests as checks, not unit tests: add those here."""
    specs = []
    for unit in manifest.get("unit_tests", {}).values():
        key = TRANSLATOR.get_asset_key(manifest["nodes"][unit["depends_on"]["nodes"][0]])
        if key in asset_keys:
            specs.append(dg.AssetCheckSpec(
                name=unit["name"], asset=key, blocking=True,
                description=f"dbt unit test: {unit.get('description') or unit['name']}",
                metadata={"dagster_dbt/unique_id": unit["unique_id"]}))
    return specs


def warehouse_dbt_assets(*, select: str = "fqn:*", exclude: str = "", name: str,
                         partitions_def: dg.PartitionsDefinition | None = None):
    """@dbt_assets, plus a check per dbt unit test on the model it tests."""
    manifest = json.loads(MANIFEST.read_text())
    specs, check_specs = dbt_specs(TRANSLATOR, manifest, select, exclude, warehouse_dbt_project)
    check_specs = [*check_specs, *_unit_test_specs(manifest, {s.key for s in specs})]
    return dg.multi_asset(
        name=name, specs=specs, check_specs=check_specs, can_subset=True, partitions_def=partitions_def,
        op_tags=selection_tags(select, exclude),
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,  # a 30-day backfill is one dbt call
        allow_arbitrary_check_specs=True,
    )


@warehouse_dbt_assets(exclude="tag:reports", name="usage_marts")
def usage_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # unpartitioned, over the run's landing hours: one materialization per mart and run (see RunHours)
    window = hours_of_run(context, "each mart").window
    restatement_id = context.run.tags.get(RESTATEMENT_TAG)
    yield from run_dbt(context, dbt, warehouse, ["build"], window_vars(window.start, window.end, restatement_id))


@warehouse_dbt_assets(select="tag:reports", name="cost_reports")
def cost_reports(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # unpartitioned: one rebuild covers every hour, so a 30-day backfill does not repeat it 720 times
    yield from run_dbt(context, dbt, warehouse, ["build"])
    # the reports have dbt tests only, which ran above: publish them at once
    conn = warehouse.connect()
    try:
        copied = publish(conn, marts_in_manifest(MANIFEST, tag="reports"), context.run.run_id)
        release_build(conn, context.run.run_id)
    finally:
        conn.close()
    context.log.info(f"published {', '.join(f'{k} ({v:,} rows)' for k, v in copied.items())}")


def run_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
            args: list[str], window: dict[str, str] | None = None) -> Iterator:
    """Take schema build for this run (waiting for a run between its dbt and its publication), undo what
    an earlier, stopped run left there, run dbt (over `window`, see window_vars), keep every test result."""
    connection = warehouse.dbt_env()
    # dbt's session settings for dbt alone: this process's own connections keep the server's
    session = {"PGOPTIONS": connection.pop("PGOPTIONS")}
    os.environ.update(connection)  # profiles.yml reads the connection from the environment
    conn = warehouse.connect()
    try:
        acquire_build(conn, Holder.this_run(context.run.run_id), lambda run_id: _finished(context, run_id),
                      context.log.info)
        restored = restore(conn, [m for m in marts_in_manifest(MANIFEST) if m.incremental])
        if restored:
            context.log.warning("an earlier run stopped before publishing; put back the published rows of "
                                + ", ".join(f"{k} ({v:,} rows)" for k, v in restored.items()))
        with _in_environment({**session, **window_env(window or {})}):  # dbt's process inherits it, here
            invocation = dbt.cli(args, context=context, raise_on_error=False)
        for event in invocation.stream():
            yield with_row_count(context, conn, event)
        results = invocation.get_artifact("run_results.json")["results"]
        manifest = invocation.manifest
        keep_partial_parse(invocation.target_path)
        prune_dbt_targets(invocation.target_path.parent)
        yield from _unit_test_results(context, manifest, results)
        failures = _record_tests(context, conn, manifest, results)
    finally:
        conn.close()
    if not invocation.is_successful():
        broken = [r["unique_id"].split(".")[-1] for r in results
                  if r["status"] == "error" and not r["unique_id"].startswith(("test.", "unit_test."))]
        raise dg.Failure(description="; ".join(
            failures + [f"dbt model {name} failed to build (see the dbt log above)" for name in broken])
            or "dbt failed; see its log above")


@contextmanager
def _in_environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in this process's environment while the block runs, then gone: no later dbt of this process
    (a report, one run by hand) sees a run's window."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def with_row_count(context, conn, event):
    """A mart's materialization with dagster/row_count: the rows of the table dbt built (views: none)."""
    if not isinstance(event, dg.Output):
        return event
    key = context.asset_key_for_output(event.output_name)
    if key.path[0] != PUBLISHED_SCHEMA:
        return event
    with conn, conn.cursor() as cur:
        cur.execute(f'select count(*) from {BUILD_SCHEMA}."{key.path[-1]}"')
        rows = cur.fetchone()[0]
    return event.with_metadata({**event.metadata, "dagster/row_count": dg.MetadataValue.int(rows)})


DBT_TARGETS_KEPT = 5  # each dbt call writes 4-7 MB of artifacts in a folder of its own; the newest stay


def prune_dbt_targets(target: Path, keep: int = DBT_TARGETS_KEPT) -> None:
    """Delete all but the newest `keep` per-invocation folders dagster-dbt made under dbt's target/."""
    import shutil

    folders = sorted((f for f in target.iterdir() if f.is_dir() and f.name.startswith(("usage_marts-",
                                                                                       "cost_reports-"))),
                     key=lambda f: f.stat().st_mtime, reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _finished(context, run_id: str) -> bool | None:
    """Whether run `run_id` has ended, as this run's Dagster instance knows it (None: it does not)."""
    run = context.instance.get_run_by_id(run_id)
    return None if run is None else run.is_finished


def _unit_test_results(context, manifest: dict, results: list[dict]) -> Iterator[dg.AssetCheckResult]:
    selected = set(context.selected_asset_check_keys)
    for r in results:
        if not r["unique_id"].startswith("unit_test.") or r["status"] == "skipped":
            continue
        unit = manifest["unit_tests"][r["unique_id"]]
        key = TRANSLATOR.get_asset_key(manifest["nodes"][unit["depends_on"]["nodes"][0]])
        if dg.AssetCheckKey(key, unit["name"]) in selected:
            yield dg.AssetCheckResult(
                asset_key=key, check_name=unit["name"], passed=r["status"] == "pass",
                severity=dg.AssetCheckSeverity.ERROR, description=r.get("message") or None,
                metadata={"status": r["status"]})


def _record_tests(context, conn, manifest: dict, results: list[dict]) -> list[str]:
    """Write every dbt test's result to audit.check_results; log and return what failed, with samples."""
    partition = _partition_label(context)
    failures = []
    for r in results:
        uid = r["unique_id"]
        if not uid.startswith(("test.", "unit_test.")) or r["status"] == "skipped":
            continue
        if uid.startswith("unit_test."):
            node = manifest["unit_tests"][uid]
            asset = TRANSLATOR.get_asset_key(manifest["nodes"][node["depends_on"]["nodes"][0]])
            kind = "dbt unit test"
        else:
            node = manifest["nodes"][uid]
            check = check_key_of_test(manifest, TRANSLATOR, uid, warehouse_dbt_project)
            asset = check.asset_key if check else dg.AssetKey(["dbt"])
            kind = "dbt test"
        status = r["status"]  # pass | warn | fail | error
        sample = _sample(conn, node) if status in ("warn", "fail") else []
        found = f": {r.get('failures')} failing rows, e.g. {sample}" if sample else (
            f": {r.get('message') or 'actual differs from expected (the diff is in the dbt log above)'}"
            if status != "pass" else "")
        summary = f"{kind} {node['name']} on {asset.to_user_string()} {status}{found}"
        if status in ("fail", "error"):
            summary += (". To fix: correct the model or its inputs, then rematerialize the partition; the "
                        "published marts keep their last good data")
            failures.append(summary)
            context.log.error(f"{summary} (partition {partition})")
        elif status == "warn":
            context.log.warning(f"{summary} (partition {partition})")
        record_check(conn, check_name=node["name"], asset_key=asset.to_user_string(), partition=partition,
                     success=status == "pass", severity={"pass": "none", "warn": "warn"}.get(status, "error"),
                     observed={"kind": kind, "status": status, "failures": r.get("failures"),
                               "message": r.get("message"), "sample": sample},
                     run_id=context.run.run_id, summary=summary)
    return failures


def _sample(conn, node: dict) -> list[dict]:
    """A few failing rows, from the view dbt stores a failing test's rows in (store_failures_as: view)."""
    if not node.get("relation_name"):
        return []
    relation = f'"{node["schema"]}"."{node["alias"]}"'  # relation_name names the database dbt parsed against
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"select * from {relation} limit {SAMPLE_ROWS}")
            names = [d[0] for d in cur.description]
            plain = (int, float, str, bool, type(None))
            return [{k: (v if isinstance(v, plain) else str(v)) for k, v in zip(names, row, strict=True)}
                    for row in cur.fetchall()]
    except Exception as exc:  # a sample is a courtesy: never let it hide the failure itself
        return [f"(no sample: {str(exc).splitlines()[0]})"]


def _partition_label(context) -> str | None:
    hours = run_hours_of(context)
    return hours.label if hours else None
