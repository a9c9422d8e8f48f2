"""The dbt docs site: every model, column, test and exposure with its lineage, generated from the warehouse
(`dbt docs generate`, which reads the catalog from the database) and served for people and BI teams."""

from __future__ import annotations

import functools
import os
import subprocess
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from orchestration.database import dbt_env
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR

DOCS_DIR = DBT_PROJECT_DIR / "target" / "docs"


class DocsError(RuntimeError):
    """dbt could not generate the site; the message has its last lines."""


def generate(dsn: str, out: Path = DOCS_DIR) -> Path:
    """Write index.html, manifest.json and catalog.json (and static_index.html, one file that opens offline).

    The project is parsed, not compiled: compiling the tests would run their macros, which expect the
    hooks of a dbt build to have run."""
    env = {**os.environ, **dbt_env(dsn)}
    where = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(out)]
    for step in (["parse"], ["docs", "generate", "--static", "--no-compile"]):
        done = subprocess.run([DBT_EXECUTABLE, *step, *where], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise DocsError(f"dbt {' '.join(step[:2])} failed: " + " | ".join(tail))
    return out


def server(folder: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server of the site's folder (call serve_forever on it)."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), functools.partial(Quiet, directory=str(folder)))
