"""Ingest throughput against a plain COPY of the same rows, in one run.

    .venv/bin/python bench/ingest.py [--events 1000000] [--runs 3]

1. Generates the events once (seeded) into a temporary landing zone.
2. Baseline: the valid rows, already rendered in COPY text format, copied into a bare table with
   a primary key on event_id (no parsing, no validation, no deduplication).
3. Ingest: the real loader (ingestion.loader.load_hour) over every landing hour, in a fresh
   child process so its peak RSS is its own.
Prints a table of medians; targets (issue 3): >= 100,000 events/s, ratio <= 1.5, peak RSS < 500 MB.
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
from ingestion.loader import load_hour
dsn, landing, start, hours = sys.argv[1], Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), int(sys.argv[4])
conn = psycopg2.connect(dsn)
with conn, conn.cursor() as cur:
    cur.execute("drop schema if exists raw cascade; drop schema if exists audit cascade")
began = time.perf_counter()
loaded = read = 0
for h in range(hours):
    for batch in load_hour(conn, landing, start + timedelta(hours=h)):
        loaded += batch.loaded
        read += batch.read
seconds = time.perf_counter() - began
# VmHWM: this process image's own peak (ru_maxrss would keep the parent's peak across fork+exec)
rss_mb = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"seconds": seconds, "read": read, "loaded": loaded, "rss_mb": rss_mb}))
"""


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


def plain_copy(dsn: str, payload: bytes) -> float:
    conn = connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("drop schema if exists bench cascade; create schema bench")
        columns = ", ".join(f"{f.name} {f.sql_type}" for f in FIELDS)
        cur.execute(f"create table bench.plain ({columns}, primary key (event_id))")
    began = time.perf_counter()
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"copy bench.plain ({', '.join(FIELD_NAMES)}) from stdin", io.BytesIO(payload))
    seconds = time.perf_counter() - began
    conn.close()
    return seconds


def ingest(dsn: str, landing: Path, hours: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, dsn, str(landing), START.isoformat(), str(hours)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    days = 2
    dsn = recreate_database(server_dsn(), DATABASE)
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp)
        began = time.perf_counter()
        manifest = generate(landing, START, days, args.events // days, seed=5)
        print(f"generated {manifest.lines:,} lines in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        payload, rows = copy_text(landing)
        baseline = [plain_copy(dsn, payload) for _ in range(args.runs)]
        runs = [ingest(dsn, landing, days * 24) for _ in range(args.runs)]
    ingest_s = statistics.median(r["seconds"] for r in runs)
    copy_s = statistics.median(baseline)
    print(f"{'measure':<36} {'median':>12}   ({args.runs} runs, {manifest.lines:,} lines, {rows:,} valid rows)")
    print(f"{'plain COPY, bare table with PK':<36} {copy_s:>10.2f} s   {rows / copy_s:>10,.0f} rows/s")
    print(f"{'ingest (read, validate, dedup, load)':<36} {ingest_s:>10.2f} s   "
          f"{manifest.lines / ingest_s:>10,.0f} events/s")
    print(f"{'ratio ingest / plain COPY':<36} {ingest_s / copy_s:>12.2f}")
    print(f"{'ingest peak RSS':<36} {statistics.median(r['rss_mb'] for r in runs):>9.0f} MB")
    ingest_runs = " ".join(f"{r['seconds']:.2f}" for r in runs)
    print(f"{'single runs: plain COPY, ingest':<36} {' '.join(f'{s:.2f}' for s in baseline)} s; {ingest_runs} s")


if __name__ == "__main__":
    main()
