"""Ingest throughput against a plain COPY of the same rows, in one run.

    .venv/bin/python bench/ingest.py [--events 1000000] [--runs 3]

1. Generates the events once (seeded) into a temporary landing zone.
2. Baseline: the valid rows, already rendered in COPY text format, copied into a bare table with
   a primary key on event_id (no parsing, no validation, no deduplication).
3. Ingest: the real loader (ingestion.loader.load_hour) over every landing hour, in a fresh
   child process so its peak RSS is its own. Baseline and ingest run in turns, one pair per run.
Prints a table of medians; targets (issue 3): >= 100,000 events/s, ratio <= 1.5, peak RSS < 500 MB;
and the CPU seconds of the loader process and of the server backend (when the server runs on this
machine), which tell which half of a load sets its pace.
Uses WAREHOUSE_DSN's server, or the embedded one, in a scratch database `warehouse_bench`.
"""

from __future__ import annotations

import argparse
import io
import json
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
from ingestion.synthetic import generate  # noqa: E402
from ingestion.validation import ValidEvent, validate  # noqa: E402
from orchestration.database import connect, embedded_server_uri, recreate_database  # noqa: E402
from orchestration.settings import Settings  # noqa: E402

START = datetime(2026, 3, 2, tzinfo=UTC)
DATABASE = "warehouse_bench"

CHILD = """
import json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
import psycopg2
from bench.ingest import backend_cpu
from ingestion.loader import load_hour
dsn, landing, start, hours = sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), int(sys.argv[4])
conn = psycopg2.connect(dsn)
with conn, conn.cursor() as cur:
    cur.execute("drop schema if exists raw cascade; drop schema if exists audit cascade")
    cur.execute("select pg_backend_pid()")
    backend = cur.fetchone()[0]
began, cpu, server_began = time.perf_counter(), time.process_time(), backend_cpu(backend)
loaded = read = 0
for h in range(hours):
    for batch in load_hour(conn, landing, start + timedelta(hours=h)):
        loaded += batch.loaded
        read += batch.read
seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
server_cpu = None if server_began is None else backend_cpu(backend) - server_began
# VmHWM: this process image's own peak (ru_maxrss would keep the parent's peak across fork+exec)
rss_mb = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"seconds": seconds, "read": read, "loaded": loaded, "rss_mb": rss_mb, "cpu": cpu,
                  "server_cpu": server_cpu}))
"""


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of a server backend process, or None if the server runs on another machine."""
    proc = Path(f"/proc/{pid}")
    if not (proc / "comm").exists() or (proc / "comm").read_text().strip() != "postgres":
        return None
    return int((proc / "schedstat").read_text().split()[0]) / 1e9


def server_dsn() -> str:
    settings = Settings.from_env()
    return settings.dsn or embedded_server_uri(settings, "postgres")


def copy_text(landing: Path) -> tuple[bytes, int]:
    """The valid rows in COPY text format, each id once, as the baseline copies them."""
    from ingestion.copy_format import copy_text

    out, seen = io.StringIO(), set()
    for path in sorted(landing.glob("dt=*/hour=*/*.jsonl.gz")):
        hour = datetime.strptime(path.parent.parent.name + path.parent.name, "dt=%Y-%m-%dhour=%H")
        for _, raw in read_lines(path):
            outcome = validate(raw, hour.replace(tzinfo=UTC))
            if isinstance(outcome, ValidEvent) and outcome.values["event_id"] not in seen:
                seen.add(outcome.values["event_id"])
                out.write("\t".join(copy_text(outcome.values[f]) for f in FIELD_NAMES) + "\n")
    return out.getvalue().encode(), len(seen)


def plain_copy(dsn: str, payload: bytes) -> tuple[float, float | None]:
    """Seconds, and the server backend's CPU seconds (None if it runs elsewhere)."""
    conn = connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("drop schema if exists bench cascade; create schema bench")
        columns = ", ".join(f"{f.name} {f.sql_type}" for f in FIELDS)
        cur.execute(f"create table bench.plain ({columns}, primary key (event_id))")
    backend = conn.get_backend_pid()
    began, cpu_began = time.perf_counter(), backend_cpu(backend)
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"copy bench.plain ({', '.join(FIELD_NAMES)}) from stdin", io.BytesIO(payload))
    seconds = time.perf_counter() - began
    cpu = None if cpu_began is None else backend_cpu(backend) - cpu_began
    conn.close()
    return seconds, cpu


def ingest(dsn: str, landing: Path, hours: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, dsn, str(landing), START.isoformat(), str(hours)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
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
        baseline, baseline_cpu, runs = [], [], []
        for run in range(args.runs):  # in pairs: a drift of the machine's speed hits both sides alike
            seconds, cpu = plain_copy(dsn, payload)
            baseline.append(seconds)
            baseline_cpu.append(cpu)
            runs.append(ingest(dsn, landing, days * 24))
            print(f"run {run + 1}/{args.runs}: plain COPY {baseline[-1]:.2f} s, ingest {runs[-1]['seconds']:.2f} s",
                  file=sys.stderr)
    ingest_s = statistics.median(r["seconds"] for r in runs)
    copy_s = statistics.median(baseline)
    pair_ratio = statistics.median(r["seconds"] / c for r, c in zip(runs, baseline, strict=True))
    print(f"{'measure':<36} {'median':>12}   ({args.runs} runs, {lines:,} lines, {rows:,} valid rows)")
    print(f"{'plain COPY, bare table with PK':<36} {copy_s:>10.2f} s   {rows / copy_s:>10,.0f} rows/s")
    print(f"{'ingest (read, validate, dedup, load)':<36} {ingest_s:>10.2f} s   "
          f"{lines / ingest_s:>10,.0f} events/s")
    print(f"{'ratio ingest / plain COPY':<36} {ingest_s / copy_s:>12.2f}")
    print(f"{'median ratio of the pairs':<36} {pair_ratio:>12.2f}")
    print(f"{'ingest peak RSS':<36} {statistics.median(r['rss_mb'] for r in runs):>9.0f} MB")
    # which half sets the pace: the loader's threads (read, check, send) or the server storing the rows
    print(f"{'ingest CPU: loader process':<36} {statistics.median(r['cpu'] for r in runs):>10.2f} s")
    server_cpus = {"ingest CPU: server backend": [r["server_cpu"] for r in runs],
                   "plain COPY CPU: server backend": baseline_cpu}
    for measure, cpus in server_cpus.items():
        shown = f"{statistics.median(cpus):>10.2f} s" if None not in cpus else f"{'n/a':>12}   (server elsewhere)"
        print(f"{measure:<36} {shown}")
    ingest_runs = " ".join(f"{r['seconds']:.2f}" for r in runs)
    print(f"{'single runs: plain COPY, ingest':<36} {' '.join(f'{s:.2f}' for s in baseline)} s; {ingest_runs} s")


if __name__ == "__main__":
    main()
