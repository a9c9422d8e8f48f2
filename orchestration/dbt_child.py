"""`warehouse-dbt`: dbt, run so that it stops when the process that started it dies.

Dagster runs dbt as a child process; a run killed mid-build would leave it writing to schema build for
tens of seconds, for nobody. Linux interrupts this process when its parent exits (dbt cancels its open
queries on an interrupt). An interrupt can land before dbt has a query to cancel, so a watchdog thread
interrupts it again, then ends the process; its sessions ask the server to check for a vanished client
every 2 s (client_connection_check_interval), so a query left behind stops too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from ingestion.lifeline import die_with_parent

INTERRUPTS = 3  # SIGINTs, INTERRUPT_EVERY seconds apart, before the process ends itself
INTERRUPT_EVERY = 3.0


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    for _ in range(INTERRUPTS):  # orphaned: dbt cancels its queries on each interrupt it sees
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(INTERRUPT_EVERY)
    os._exit(130)


def main() -> None:
    parent = os.getppid()
    die_with_parent(parent, signal.SIGINT)
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} -c client_connection_check_interval=2000".strip()
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watchdog").start()
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())
