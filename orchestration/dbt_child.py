"""`warehouse-dbt`: dbt, started so that it stops when the process that started it dies.

Dagster runs dbt as a child process; a run killed mid-build would leave it writing to schema build for
tens of seconds, for nobody. This entry point asks Linux to interrupt it when its parent exits (dbt
cancels its open queries on an interrupt), then becomes dbt itself.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ingestion.lifeline import die_with_parent


def main() -> None:
    die_with_parent(os.getppid(), signal.SIGINT)
    dbt = Path(sys.executable).parent / "dbt"
    os.execv(dbt, [str(dbt), *sys.argv[1:]])
