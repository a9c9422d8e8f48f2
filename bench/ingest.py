"""Ingest throughput against a plain COPY of the same rows, in one run.

    .venv/bin/python bench/ingest.py [--events 1000000] [--runs 3]

1. Generates the events once (seeded) into a temporary landing zone.
2. Baselines: the valid rows, already rendered in COPY text format, copied into a bare table with
   a primary key on event_id (no parsing, no validation, no deduplication): by one COPY, and by two
   COPYs side by side (half the rows each, two connections): the floor on a machine with two cores.
3. Ingest: the real loader (ingestion.parallel.load_hours) over every landing hour, in a fresh
   child process so its peak RSS is its own: once with one worker (files one after another in
   one process) and once with --workers processes loading files side by side. Baseline and the
   ingests run in turns, one round per run.
Prints a table of medians; targets (issue 3): >= 100,000 events/s, ratio <= 1.5, peak RSS < 500 MB;
and the CPU seconds of the loader's processes and of the server's (when the server runs on this
machine), which tell which half of a load sets its pace.
Uses WAREHOUSE_DSN's server, or the embedded one, in a scratch database `warehouse_bench`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestion.contract import FIELD_NAMES, FIELDS  # noqa: E402
from ingestion.readers import read_lines  # noqa: E402
from ingestion.validation import ValidEvent, validate  # noqa: E402
from orchestration.database import connect, drop_database, embedded_server_uri, recreate_database  # noqa: E402
from orchestration.settings import Settings  # noqa: E402
from samples.synthetic import generate  # noqa: E402

START = datetime(2026, 3, 2, tzinfo=UTC)
DATABASE = "warehouse_bench"

CHILD = """
import json, resource, sys, time
from datetime import datetime, timedelta
from pathlib import Path
import psycopg2
from bench.ingest import server_cpu
from ingestion.parallel import load_hours
dsn, landing, start, hours, workers = (sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]),
                                       int(sys.argv[4]), int(sys.argv[5]))
conn = psycopg2.connect(dsn)
with conn, conn.cursor() as cur:
    cur.execute("drop schema if exists raw cascade; drop schema if exists audit cascade")
    cur.execute("select pg_backend_pid()")
    backend = cur.fetchone()[0]
began, server_began = time.perf_counter(), server_cpu(backend)
loaded = read = 0
for batch in load_hours(dsn, landing, [start + timedelta(hours=h) for h in range(hours)], workers=workers):
    loaded += batch.loaded
    read += batch.read
seconds = time.perf_counter() - began
time.sleep(0.5)  # the workers' backends have ended: let the server reap them, which adds their CPU to its own
server = None if server_began is None else server_cpu(backend) - server_began
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
# VmHWM: this process image's own peak (ru_maxrss would keep the parent's peak across fork+exec);
# workers: the largest worker's peak, counted once per worker (an upper bound of their sum)
rss_mb = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
rss_mb += (workers if workers > 1 else 0) * usage[1].ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "read": read, "loaded": loaded, "rss_mb": rss_mb,
                  "cpu": sum(u.ru_utime + u.ru_stime for u in usage), "server_cpu": server}))
"""


def _stat(pid: int | str) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: [1] is the parent's pid, [11:15] the CPU times."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_ticks(pid: int | str, children: bool = False) -> int:
    return sum(int(f) for f in _stat(pid)[11:15 if children else 13])  # utime stime (cutime cstime)


def server_cpu(backend: int) -> float | None:
    """CPU seconds the whole server has used (every backend, ended ones included, and the background
    processes), found from one backend's pid; None if the server runs on another machine."""
    proc = Path(f"/proc/{backend}")
    if not (proc / "comm").exists() or (proc / "comm").read_text().strip() != "postgres":
        return None
    postmaster = _stat(backend)[1]
    ticks = _cpu_ticks(postmaster, children=True)  # ended backends are counted in its children's time
    for child in Path("/proc").glob("[0-9]*"):
        try:
            if _stat(child.name)[1] == postmaster:
                ticks += _cpu_ticks(child.name)
        except (OSError, IndexError):  # a process that ended while the list was read
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def server_dsn() -> str:
    settings = Settings.from_env()
    return settings.dsn or embedded_server_uri(settings, "postgres")


def copy_text(landing: Path) -> tuple[bytes, int]:
    """The valid rows in COPY text format, each id once, as the baseline copies them."""
    from ingestion.copy_format import copy_text

    out, seen = io.StringIO(), set()
    for path in sorted(landing.glob("dt=*/hour=*/*.jsonl.gz")):
        hour = datetime.strptime(path.parent.parent.name + path.parent.name, "dt=%Y-%m-%dhour=%H")
        for _, raw, _ in read_lines(path):
            outcome = validate(raw, hour.replace(tzinfo=UTC))
            if isinstance(outcome, ValidEvent) and outcome.values["event_id"] not in seen:
                seen.add(outcome.values["event_id"])
                out.write("\t".join(copy_text(outcome.values[f]) for f in FIELD_NAMES) + "\n")
    return out.getvalue().encode(), len(seen)


def bare_table(cur, name: str = "bench.plain") -> None:
    """The baselines' table: the contract's columns and a primary key on event_id, nothing else."""
    columns = ", ".join(f"{f.name} {f.sql_type}" for f in FIELDS)
    cur.execute(f"create table {name} ({columns}, primary key (event_id))")


def plain_copy(dsn: str, payload: bytes) -> tuple[float, float | None]:
    """Seconds, and the server's CPU seconds (None if it runs elsewhere)."""
    conn = connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("drop schema if exists bench cascade; create schema bench")
        bare_table(cur)
    backend = conn.get_backend_pid()
    began, cpu_began = time.perf_counter(), server_cpu(backend)
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"copy bench.plain ({', '.join(FIELD_NAMES)}) from stdin", io.BytesIO(payload))
    seconds = time.perf_counter() - began
    cpu = None if cpu_began is None else server_cpu(backend) - cpu_began
    conn.close()
    return seconds, cpu


def two_copies(dsn: str, payload: bytes) -> float:
    """Seconds for the rows in two halves, each by a COPY of its own on its own connection, side by side."""
    from concurrent.futures import ThreadPoolExecutor

    lines = payload.splitlines(keepends=True)
    halves = [b"".join(lines[: len(lines) // 2]), b"".join(lines[len(lines) // 2:])]
    conn = connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("drop schema if exists bench cascade; create schema bench")
        bare_table(cur)
    conn.close()
    conns = [connect(dsn) for _ in halves]

    def copy(conn, half: bytes) -> None:  # psycopg2 lets go of the GIL while the server works
        with conn, conn.cursor() as cur:
            cur.copy_expert(f"copy bench.plain ({', '.join(FIELD_NAMES)}) from stdin", io.BytesIO(half))

    began = time.perf_counter()
    with ThreadPoolExecutor(len(halves)) as pool:
        list(pool.map(copy, conns, halves))
    seconds = time.perf_counter() - began
    for conn in conns:
        conn.close()
    return seconds


def ingest(dsn: str, landing: Path, hours: int, workers: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, dsn, str(landing), START.isoformat(), str(hours), str(workers)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="loader processes of the parallel ingest (default: the cores this process may use)")
    parser.add_argument("--landing-cache", type=Path, help="keep the generated files here and reuse them")
    args = parser.parse_args()
    days = 2
    dsn = recreate_database(server_dsn(), DATABASE)
    with tempfile.TemporaryDirectory() as tmp:
        landing = args.landing_cache / f"events-{args.events}" if args.landing_cache else Path(tmp)
        if (landing / "_manifest.json").exists():  # generated by an earlier run with --landing-cache
            lines = json.loads((landing / "_manifest.json").read_text())["lines"]
            print(f"reusing the {lines:,} lines in {landing}", file=sys.stderr)
        else:
            began = time.perf_counter()
            lines = generate(landing, START, days, args.events // days, seed=5).lines
            print(f"generated {lines:,} lines in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        payload, rows = copy_text(landing)
        baseline, baseline_cpu, pairs = [], [], []
        runs: dict[int, list[dict]] = {1: [], args.workers: []}
        for run in range(args.runs):  # in rounds: a drift of the machine's speed hits every side alike
            seconds, cpu = plain_copy(dsn, payload)
            baseline.append(seconds)
            baseline_cpu.append(cpu)
            pairs.append(two_copies(dsn, payload))
            for workers, done in runs.items():
                done.append(ingest(dsn, landing, days * 24, workers))
            print(f"run {run + 1}/{args.runs}: plain COPY {baseline[-1]:.2f} s, two COPYs {pairs[-1]:.2f} s, ingest "
                  + ", ".join(f"{w} worker(s) {done[-1]['seconds']:.2f} s" for w, done in runs.items()),
                  file=sys.stderr)
    drop_database(server_dsn(), DATABASE)  # a scratch database: nothing in it is kept
    copy_s = statistics.median(baseline)
    print(f"{'measure':<46} {'median':>12}   ({args.runs} runs, {lines:,} lines, {rows:,} valid rows)")
    print(f"{'plain COPY, bare table with PK':<46} {copy_s:>10.2f} s   {rows / copy_s:>10,.0f} rows/s")
    print(f"{'plain COPY CPU: server':<46} {cpu_seconds(baseline_cpu)}")
    pair_s = statistics.median(pairs)
    print(f"{'two plain COPYs side by side (half each)':<46} {pair_s:>10.2f} s   {rows / pair_s:>10,.0f} rows/s")
    for workers, done in runs.items():
        ingest_s = statistics.median(r["seconds"] for r in done)
        pair_ratio = statistics.median(r["seconds"] / c for r, c in zip(done, baseline, strict=True))
        label = f"ingest, {workers} worker{'s' if workers > 1 else ''} (read, check, dedup, load)"
        print(f"{label:<46} {ingest_s:>10.2f} s   "
              f"{lines / ingest_s:>10,.0f} events/s")
        print(f"{'  ratio ingest / plain COPY':<46} {ingest_s / copy_s:>12.2f}")
        print(f"{'  median ratio of the rounds':<46} {pair_ratio:>12.2f}")
        two_ratio = statistics.median(r["seconds"] / c for r, c in zip(done, pairs, strict=True))
        print(f"{'  ratio ingest / two COPYs (rounds median)':<46} {two_ratio:>12.2f}")
        print(f"{'  peak RSS':<46} {statistics.median(r['rss_mb'] for r in done):>9.0f} MB")
        # which half sets the pace: the loader's processes (read, check, send) or the server storing the rows
        print(f"{'  CPU: loader processes':<46} {statistics.median(r['cpu'] for r in done):>10.2f} s")
        print(f"{'  CPU: server':<46} {cpu_seconds([r['server_cpu'] for r in done])}")
        singles = " ".join(f"{r['seconds']:.2f}" for r in done)
        print(f"{'  single runs':<46} {singles} s")
    print(f"{'single runs: plain COPY':<46} {' '.join(f'{s:.2f}' for s in baseline)} s")
    print(f"{'single runs: two COPYs':<46} {' '.join(f'{s:.2f}' for s in pairs)} s")


def cpu_seconds(values: list[float | None]) -> str:
    if None in values:
        return f"{'n/a':>12}   (server elsewhere)"
    return f"{statistics.median(values):>10.2f} s"

if __name__ == "__main__":
    main()
