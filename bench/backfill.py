"""A backfill of many hourly partitions as one run, and what Dagster records for it (issue 22, item 3).

    .venv/bin/python bench/backfill.py [--days 30] [--events-per-day 2000] [--runs 1]

1. Generates --days of landing files (seeded) into a temporary landing zone.
2. Backfill: every hour of them as one run of hourly_usage_job (load, gates, dbt, publication), as
   `warehouse backfill` runs it, on a fresh warehouse database and a fresh Dagster storage in PostgreSQL
   (the project's dagster.yaml), then the Dagster events of the run counted by type.
3. Baseline in the same round: a plain COPY of the valid rows into a bare table and one GROUP BY of them by
   hour, org, provider and model (the least work that puts the hours in a rollup).
Prints medians: the run's wall time, its Dagster events by type, and the ratio to the baseline.
Uses WAREHOUSE_DSN's server, or the embedded one, in scratch databases warehouse_backfill(_dagster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hourly import copy_and_group  # noqa: E402
from bench.ingest import copy_text, server_dsn  # noqa: E402
from orchestration.database import drop_database, recreate_database, sqlalchemy_url  # noqa: E402
from samples.synthetic import generate  # noqa: E402

START = datetime(2026, 3, 2, tzinfo=UTC)
DATABASE = "warehouse_backfill"


def backfill(server: str, landing: Path, home: Path, days: int) -> tuple[float, Counter]:
    """Seconds of the backfill run, and its Dagster events by type."""
    import dagster as dg

    from orchestration.cli import prepare_environment
    from orchestration.runs import materialize_hours, materialize_reference
    from orchestration.settings import Settings

    os.environ.update({"WAREHOUSE_DSN": recreate_database(server, DATABASE), "WAREHOUSE_LANDING_DIR": str(landing),
                       "DAGSTER_PG_URL": sqlalchemy_url(recreate_database(server, DATABASE + "_dagster")),
                       "WAREHOUSE_STATE_DIR": str(home), "WAREHOUSE_HISTORY_START": f"{START:%Y-%m-%d}",
                       "WAREHOUSE_DATA_DOCS_DIR": str(home / "data_docs")})
    prepare_environment(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)  # as the CLI
        if not materialize_reference(instance, log_level="WARNING").success:
            sys.exit("[bench] loading the price catalog failed")
        began = time.perf_counter()
        result = materialize_hours(START, START + timedelta(days=days, hours=-1), instance, log_level="WARNING")
        seconds = time.perf_counter() - began
        if not result.success:
            sys.exit("[bench] the backfill run failed: see its log above")
        events = Counter(e.dagster_event_type.value for e in instance.all_logs(result.run_id) if e.dagster_event)
    return seconds, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    server = server_dsn()
    with tempfile.TemporaryDirectory() as tmp:
        landing, home = Path(tmp) / "landing", Path(tmp) / "state"
        lines = generate(landing, START, args.days, args.events_per_day, seed=31).lines
        payload, rows = copy_text(landing)
        runs, floors, counts = [], [], Counter()
        for run in range(args.runs):  # in rounds: a drift of the machine's speed hits both sides alike
            floors.append(copy_and_group(recreate_database(server, DATABASE + "_baseline"), payload))
            seconds, counts = backfill(server, landing, home, args.days)
            runs.append(seconds)
            print(f"run {run + 1}/{args.runs}: backfill {seconds:.1f} s, COPY + GROUP BY {floors[-1]:.2f} s",
                  file=sys.stderr)
    for suffix in ("", "_dagster", "_baseline"):  # scratch databases: nothing in them is kept
        drop_database(server, DATABASE + suffix)
    hours = args.days * 24
    run_s, floor_s = statistics.median(runs), statistics.median(floors)
    print(f"{'measure':<48} {'median':>10}   ({args.runs} runs, {hours} hours, {lines:,} lines, {rows:,} valid rows)")
    print(f"{'baseline: plain COPY + one GROUP BY':<48} {floor_s:>8.2f} s")
    print(f"{'backfill: one run of hourly_usage_job':<48} {run_s:>8.2f} s   {run_s / floor_s:,.1f}x the baseline")
    total = sum(counts.values())
    print(f"{'Dagster events of the run':<48} {total:>10,}   ({total / hours:.1f} per hour)")
    for kind, n in counts.most_common(6):
        print(f"{'  ' + kind:<48} {n:>10,}")


if __name__ == "__main__":
    main()
