"""Child processes die with their parent: a loader worker or a dbt process whose run was killed would
otherwise go on writing (and holding connections and locks) for nobody.

Linux delivers a chosen signal to a process when its parent exits (prctl PR_SET_PDEATHSIG); elsewhere
this is a no-op and an orphan runs to its end, as before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Have this process receive `sig` when process `parent_pid`, its parent, exits. If the parent is
    already gone (it died before this call), exit at once."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return  # not allowed here (a sandbox): the process simply outlives its parent, as before
    if os.getppid() != parent_pid:  # the parent died before prctl took effect: no signal will come
        os._exit(1)


def process_gone(pid: int, alive_at: float) -> bool:
    """Process `pid`, known to be running at `alive_at` (seconds since the epoch), has ended: no such pid,
    a zombie, or the pid now belongs to a process started later (pids are reused)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE or process.create_time() > alive_at + 1
    except psutil.NoSuchProcess:
        return True
