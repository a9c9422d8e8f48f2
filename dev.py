#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 dev.py demo    install, start the embedded PostgreSQL, generate 7 days of logs, run everything
    python3 dev.py test    install, then run the test suite
    python3 dev.py ui      install, then start the Dagster UI on the same warehouse

The first call creates .venv/ and installs the project into it (pyproject.toml); later calls
reinstall only when pyproject.toml changes. Extra arguments are passed on (e.g. `test -k ingest`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 is
        sys.exit(f"[dev] Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing the project and its dependencies (first time: a few minutes)")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "--progress-bar", "off", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    commands = {
        "demo": [str(BIN / "warehouse"), "demo"],
        "test": [str(BIN / "python"), "-m", "pytest"],
        "ui": [str(BIN / "warehouse"), "ui"],
    }
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    ensure_installed()
    return subprocess.run([*commands[argv[0]], *argv[1:]], cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
