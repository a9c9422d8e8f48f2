"""A batch's database work on a thread of its own, so Python reads chunk N+1 while the server stores chunk N.

Jobs run one at a time, in the order they were submitted, on the batch's cursor; the cursor is not
touched by anyone else until `close()`. psycopg2 releases the GIL while it waits for the server,
which is what lets the two overlap on a machine with two cores.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable

QUEUED_JOBS = 2  # chunks waiting for the server: enough to overlap, few enough to keep memory flat


class ServerWriter:
    def __init__(self, cur):
        self.cur = cur
        self.jobs: queue.Queue = queue.Queue(maxsize=QUEUED_JOBS)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:  # after a failure, drain the queue without running anything more
                try:
                    job()
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self.error = exc

    def submit(self, job: Callable[[], None]) -> None:
        if self.error is not None:
            self.close()
        self.jobs.put(job)

    def copy(self, sql: str, payload: bytes) -> None:
        """COPY FROM STDIN with the payload in one piece (psycopg2 re-takes the GIL after every read)."""
        self.cur.copy_expert(sql, io.BytesIO(payload), size=max(len(payload), 8192))

    def stop(self) -> None:
        """Wait for the jobs already queued (they are skipped after a failure); never raises."""
        if self.thread.is_alive():
            self.jobs.put(None)
            self.thread.join()

    def close(self) -> None:
        """Wait for every job; raises the first error a job raised."""
        self.stop()
        if self.error is not None:
            raise self.error
