"""The dbt project and its manifest, which Dagster reads to build one asset per dbt model."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# the dbt installed beside this Python, so an unactivated virtualenv still finds it, through the
# warehouse-dbt entry point (orchestration/dbt_child.py) that stops it when its run is killed
_beside_python = Path(sys.executable).parent
DBT_EXECUTABLE = next((str(_beside_python / name) for name in ("warehouse-dbt", "dbt")
                       if (_beside_python / name).exists()), shutil.which("dbt") or "dbt")

warehouse_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=warehouse_dbt_project, dbt_executable=DBT_EXECUTABLE)


def prepare_manifest(refresh: bool = False) -> Path:
    """Parse the dbt project (a few seconds) when asked to, or when no manifest exists yet.

    `dagster dev` reparses on every load (like DbtProject.prepare_if_dev, but with the dbt beside
    this Python); the demo and the tests refresh once at start, so an edited model is never run
    from a stale manifest.
    """
    if refresh or not warehouse_dbt_project.manifest_path.exists():
        dbt_resource().cli(["--quiet", "parse"], target_path=warehouse_dbt_project.target_path).wait()
    return warehouse_dbt_project.manifest_path
