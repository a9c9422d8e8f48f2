"""Many hours at once (a backfill, a day of files): files load in worker processes side by side.

Each file is still one atomic batch on a connection of its own, so everything the loader guarantees
holds per file. Across files, exactly-once does not depend on the order: the registry's unique key
(raw.event_ids) keeps the copy of an event whose batch commits first, and the other batch counts it as
a duplicate (a conflicting one if its content differs). Two batches that wait on each other's ids are
a deadlock the server breaks by undoing one of them, which then starts again (ingestion/loader.py).
Processes, not threads: checking rows is Python work, and one interpreter runs it on one core only.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2

from ingestion.landing import hour_work
from ingestion.lifeline import die_with_parent
from ingestion.loader import BatchResult, load_file
from ingestion.readers import LandedFile
from ingestion.schema import ensure_schema
from ingestion.sources import SourceSpec
from ingestion.validation import MAX_LATENESS


def load_hours(dsn: str, landing_dir: Path, hours: list[datetime], specs: list[SourceSpec] = (),
               max_lateness: timedelta = MAX_LATENESS, workers: int = 1) -> Iterator[BatchResult]:
    """Load everything that landed in `hours`, yielding each batch's result: first the application
    databases' batches (extracted here, hour by hour: each advances its watermark) and the files no
    source reads, then each file's batch in the order of the hours and their files. Files go to
    `workers` processes, or are loaded here when there is one worker or one file.
    The workers are spawned: a script that calls this needs multiprocessing's `if __name__ == "__main__":`."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur)  # once, before the workers: they would otherwise race to create it
        files: list[tuple[LandedFile, datetime]] = []
        for hour in hours:
            for work in hour_work(conn, landing_dir, hour, specs, max_lateness):
                if isinstance(work, LandedFile):
                    files.append((work, hour))
                else:
                    yield work
        if workers <= 1 or len(files) <= 1:
            for landed, hour in files:
                yield load_file(conn, landed.path, hour, landing_dir, landed.source, max_lateness)
            return
    finally:
        conn.close()
    # spawned, not forked: a fork would copy the caller's threads and open connections
    processes = min(workers, len(files))
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(dsn, os.getpid()))
    try:
        pending = {i: pool.submit(_load_file, files[i][0].path, files[i][1], landing_dir, files[i][0].source,
                                  max_lateness) for i in spread(len(files), processes)}
        for i in range(len(files)):
            yield pending[i].result()
    finally:  # on a failure or when the caller stops early, files not started yet stay for a rerun
        pool.shutdown(cancel_futures=True)


def spread(count: int, workers: int) -> list[int]:
    """The order to start `count` files in: each worker from its own stretch of the list, side by side.
    Neighbouring files share re-delivered events, and a loader that meets an id another batch has
    not committed yet waits for that batch: seen here as half of a two-worker load spent waiting."""
    stretch = -(-count // workers) or 1
    starts = range(0, count, stretch)
    return [start + step for step in range(stretch) for start in starts if start + step < count]


_worker_conn = None  # each worker process's own connection, opened once


def _start_worker(dsn: str, parent_pid: int) -> None:
    global _worker_conn
    die_with_parent(parent_pid)  # a killed run's worker must not go on loading (its batch rolls back)
    _worker_conn = psycopg2.connect(dsn)


def _load_file(path: Path, hour: datetime, landing_dir: Path, source: SourceSpec,
               max_lateness: timedelta) -> BatchResult:
    return load_file(_worker_conn, path, hour, landing_dir, source, max_lateness)
