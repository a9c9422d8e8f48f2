"""The semantic layer, queried by name: MetricFlow (`mf`) over the metrics defined once in
dbt_project/models/semantic, reading the published marts (schema marts) as BI does, not schema build,
where a run's rows wait for their gates.

dbt knows the marts as the tables it builds in schema build, so `prepare` parses the project into its
own folder and writes a semantic manifest whose marts point at schema marts; `mf` then runs there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from orchestration.database import dbt_env
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.publication import BUILD_SCHEMA, PUBLISHED_SCHEMA

METRICS_DIR = DBT_PROJECT_DIR / "target" / "metrics"  # a dbt project folder of its own that mf runs in
MF_EXECUTABLE = str(Path(sys.executable).parent / "mf")


class MetricsError(RuntimeError):
    """dbt could not parse the project; the message has its last lines."""


def published(manifest: dict, database: str) -> dict:
    """The semantic manifest reading `database`, every mart from schema marts instead of schema build."""
    for model in manifest["semantic_models"]:
        relation = model["node_relation"]
        if relation["schema_name"] == BUILD_SCHEMA:
            relation["schema_name"] = PUBLISHED_SCHEMA
        relation["database"] = database
        relation["relation_name"] = ".".join(
            f'"{part}"' for part in (database, relation["schema_name"], relation["alias"]))
    return manifest


def _sources() -> list[Path]:
    return [DBT_PROJECT_DIR / "dbt_project.yml", *(DBT_PROJECT_DIR / "models").rglob("*.yml")]


def prepare(dsn: str) -> Path:
    """Parse the project when its YAML changed since the last time, and write METRICS_DIR for mf."""
    env = {**os.environ, **dbt_env(dsn)}
    parsed = METRICS_DIR / "parse"
    manifest = parsed / "semantic_manifest.json"
    if not manifest.exists() or manifest.stat().st_mtime < max(p.stat().st_mtime for p in _sources()):
        where = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                 "--target-path", str(parsed)]
        done = subprocess.run([DBT_EXECUTABLE, "parse", *where], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise MetricsError("dbt parse failed: " + " | ".join(tail))
    target = METRICS_DIR / "target" / "semantic_manifest.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DBT_PROJECT_DIR / "dbt_project.yml", METRICS_DIR / "dbt_project.yml")
    written = target.with_suffix(f".{os.getpid()}.tmp")
    written.write_text(json.dumps(published(json.loads(manifest.read_text()), env["DBT_PG_DBNAME"])))
    os.replace(written, target)  # whole, even beside another mf reading it
    return METRICS_DIR


def mf(args: list[str], dsn: str, **run) -> subprocess.CompletedProcess:
    """Run `mf <args>` (e.g. ["query", "--metrics", "cost_usd", "--group-by", "metric_time__day"])."""
    folder = prepare(dsn)
    env = {**os.environ, **dbt_env(dsn), "DBT_PROJECT_DIR": str(folder), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    return subprocess.run([MF_EXECUTABLE, *args], env=env, cwd=folder, **run)
