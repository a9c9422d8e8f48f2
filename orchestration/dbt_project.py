"""The dbt project and its manifest, which Dagster reads to build one asset per dbt model."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# the dbt installed beside this Python, so an unactivated virtualenv still finds it, through the
# warehouse-dbt entry point (orchestration/dbt_child.py) that stops it when its run is killed
_beside_python = Path(sys.executable).parent
DBT_EXECUTABLE = next((str(_beside_python / name) for name in ("warehouse-dbt", "dbt")
                       if (_beside_python / name).exists()), shutil.which("dbt") or "dbt")

warehouse_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# what WarehouseDbtCli replaces in DbtCliResource: private, so tests/test_definitions.py checks they still exist
SKIPPED_START_UP = ("_cli_version", "_initialize_dbt_core_adapter")


class WarehouseDbtCli(DbtCliResource):
    """dagster-dbt's resource without two start-ups this project never uses, 6 s of every dbt call on a
    two-core machine (bench/RESULTS.md): `dbt --version` in a process of its own to learn the version,
    and dbt's adapter loaded into the run's own process to read columns and row counts (the marts' row
    counts come from orchestration/defs/dbt.py, in one query)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))  # DBT_EXECUTABLE is this dbt-core's

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return WarehouseDbtCli(project_dir=warehouse_dbt_project, dbt_executable=DBT_EXECUTABLE)


PARTIAL_PARSE = "partial_parse.msgpack"


def keep_partial_parse(invocation_target: Path) -> None:
    """Keep dbt's parse of the last run in the project's target/, where dagster-dbt copies it from into each new
    invocation: dbt then reparses only what changed, not the whole project (5 s of every run). A parse made
    against another database (profile) or other --vars is reparsed in full by dbt itself."""
    fresh = invocation_target / PARTIAL_PARSE
    if not fresh.exists():
        return
    kept = warehouse_dbt_project.project_dir / warehouse_dbt_project.target_path / PARTIAL_PARSE
    temporary = kept.with_name(f"{PARTIAL_PARSE}.{os.getpid()}")
    shutil.copyfile(fresh, temporary)
    os.replace(temporary, kept)  # whole or not at all: a run starting now reads the old or the new


def prepare_manifest(refresh: bool = False) -> Path:
    """Parse the dbt project (a few seconds) when asked to, or when no manifest exists yet.

    `dagster dev` reparses on every load (like DbtProject.prepare_if_dev, but with the dbt beside
    this Python); the demo and the tests refresh once at start, so an edited model is never run
    from a stale manifest.
    """
    if refresh or not warehouse_dbt_project.manifest_path.exists():
        dbt_resource().cli(["--quiet", "parse"], target_path=warehouse_dbt_project.target_path).wait()
    return warehouse_dbt_project.manifest_path
