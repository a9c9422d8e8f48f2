"""End-to-end hourly latency: from "an hour's files landed" to "its rows published in marts and the
reports rebuilt", through Dagster as the schedule runs it, with each step's share (issue 22).

    .venv/bin/python bench/hourly.py [--events 10000000] [--days 30] [--hour-events 2000] [--runs 3]

1. A warehouse of --events over --days, built once per size and kept (database warehouse_hourly_<events>,
   landing files and Dagster storage under WAREHOUSE_BENCH_DIR, default /var/tmp/warehouse-bench): a later
   call with the same size starts at step 2.
2. Each round lands one new hour of about --hour-events events, then one of almost none (--quiet-events a
   day), and runs each as the schedule would: `dagster job execute` of hourly_usage_job for that partition
   in a fresh process (the run worker: interpreter, code location, the job's multiprocess executor with a
   process per step), then reports_job the same way (reports_after_marts_sensor's run).
3. Baseline in the same round: a plain COPY of that hour's valid rows into a bare table and one GROUP BY
   of them by org, provider and model (the least work that puts an hour in a rollup).
Prints medians per kind of hour: wall time end to end, the hourly and the reports run, the run's start-up
(process start to first step) and each step (Dagster's step stats; steps may overlap), and the ratio to
the baseline. Targets: at most 60 s end to end, at most 20 s for an hour with almost no rows.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import bare_table, copy_text  # noqa: E402
from ingestion.contract import FIELD_NAMES  # noqa: E402
from orchestration.database import connect, recreate_database  # noqa: E402
from samples.synthetic import Defects, generate  # noqa: E402

START = datetime(2026, 3, 2, tzinfo=UTC)
BIN = Path(sys.executable).parent


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def environment(home: Path) -> dict[str, str]:
    """The settings of the bench's warehouse: its own database, Dagster storage, landing zone and state."""
    from orchestration.cli import prepare_environment
    from orchestration.database import embedded_server_uri, sqlalchemy_url
    from orchestration.settings import Settings

    marker = home / "built"
    if marker.exists():
        dsn, dagster = json.loads(marker.read_text())
    else:
        settings = Settings.from_env()
        server = settings.dsn or embedded_server_uri(settings, "postgres")
        dsn = recreate_database(server, home.name)
        dagster = sqlalchemy_url(recreate_database(server, home.name + "_dagster"))
    os.environ.update({"WAREHOUSE_DSN": dsn, "DAGSTER_PG_URL": dagster, "WAREHOUSE_LANDING_DIR": str(home / "landing"),
                       "WAREHOUSE_STATE_DIR": str(home / "state"), "WAREHOUSE_HISTORY_START": f"{START:%Y-%m-%d}",
                       "WAREHOUSE_REPORTS_DIR": str(home / "reports"),
                       "WAREHOUSE_DATA_DOCS_DIR": str(home / "data_docs")})
    prepare_environment(Settings.from_env())
    return {**os.environ}


def build(home: Path, events: int, days: int) -> None:
    """The warehouse the hours land on: --days of history loaded, rolled up, published, once per size."""
    from orchestration.cli import run_partitions

    if (home / "built").exists():
        say(f"reusing the warehouse of {events:,} events in {home}")
        return
    landing = home / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(home / "ahead", ignore_errors=True)
    say(f"generating {events:,} events over {days} days into {landing}")
    generate(landing, START, days, events // days, seed=22)
    say("loading and building it as one run (a few minutes per million events)")
    began = time.perf_counter()
    results = run_partitions(START, START + timedelta(days=days, hours=-1))
    if not all(r.success for r in results):
        sys.exit("[bench] building the warehouse failed: see the run in the Dagster UI")
    say(f"built in {time.perf_counter() - began:.0f} s")
    (home / "built").write_text(json.dumps([os.environ["WAREHOUSE_DSN"], os.environ["DAGSTER_PG_URL"]]))


def future_hours(home: Path, days: int, hour_events: int, quiet_events: int, runs: int) -> tuple[list, list]:
    """Landing-hour folders generated ahead, not yet in the landing zone: busy hours and quiet ones."""
    ahead = home / "ahead"
    busy_day, quiet_day = START + timedelta(days=days), START + timedelta(days=days + 1)
    if not ahead.exists():
        clean = Defects(0, 0, 0, 0)  # a planted defect in an hour of one event would fail its gate
        generate(ahead / "busy", busy_day, 1, hour_events * 24, seed=23, defects=clean)
        generate(ahead / "quiet", quiet_day, 1, quiet_events, seed=24, defects=clean)
    landed = home / "landing"

    def pending(kind: str, day: datetime) -> list[tuple[datetime, Path]]:
        hours = [day + timedelta(hours=h) for h in range(24)]
        return [(h, ahead / kind / f"dt={h:%Y-%m-%d}" / f"hour={h:%H}") for h in hours
                if not (landed / f"dt={h:%Y-%m-%d}" / f"hour={h:%H}").exists()][:runs]

    busy, quiet = pending("busy", busy_day), pending("quiet", quiet_day)
    if len(busy) < runs or len(quiet) < runs:
        sys.exit(f"[bench] only {len(busy)} busy and {len(quiet)} quiet hours left ahead: delete {ahead} and "
                 f"{home / 'built'} to start again")
    return busy, quiet


def baseline(dsn: str, folder: Path) -> float:
    """Seconds for a plain COPY of the hour's valid rows into a bare table, then one GROUP BY of them."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(folder, Path(tmp) / folder.parent.name / folder.name)
        payload, _ = copy_text(Path(tmp))
    return copy_and_group(dsn, payload)


def copy_and_group(dsn: str, payload: bytes) -> float:
    """Seconds for a plain COPY of rows (COPY text) into a bare table, then one GROUP BY of them by hour,
    org, provider and model: the least work that puts them in a rollup."""
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("drop schema if exists bench cascade; create schema bench")
            bare_table(cur)
        began = time.perf_counter()
        with conn, conn.cursor() as cur:
            cur.copy_expert(f"copy bench.plain ({', '.join(FIELD_NAMES)}) from stdin", io.BytesIO(payload))
            cur.execute("""create table bench.rollup as
                           select date_trunc('hour', event_time) as hour, org_id, provider, model, count(*) as requests,
                                  sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens
                           from bench.plain group by 1, 2, 3, 4""")
        return time.perf_counter() - began
    finally:
        conn.close()


def run_job(env: dict, job: str, tags: dict[str, str]) -> dict:
    """`dagster job execute` in a fresh process; its wall time, start-up and each step's time."""
    import dagster as dg

    began = time.time()
    done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", job,
                           "--tags", json.dumps(tags)], env=env, cwd=ROOT, capture_output=True, text=True)
    ended = time.time()
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
        if run.dagster_run.status != dg.DagsterRunStatus.SUCCESS or done.returncode != 0:
            sys.exit(f"[bench] {job} failed ({run.dagster_run.run_id}): {done.stderr.strip()[-800:]}")
        stats = instance.get_run_step_stats(run.dagster_run.run_id)
    steps = {s.step_key: s.end_time - s.start_time for s in stats if s.start_time and s.end_time}
    first = min(s.start_time for s in stats if s.start_time)
    return {"wall": ended - began, "start-up": first - began, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hour-events", type=int, default=2000)
    parser.add_argument("--quiet-events", type=int, default=24, help="events in the whole quiet day")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(os.environ.get("WAREHOUSE_BENCH_DIR", "/var/tmp/warehouse-bench")) / f"warehouse_hourly_{args.events}"
    home.mkdir(parents=True, exist_ok=True)
    env = environment(home)
    build(home, args.events, args.days)
    busy, quiet = future_hours(home, args.days, args.hour_events, args.quiet_events, args.runs)
    from orchestration.tags import RANGE_END_TAG, RANGE_START_TAG

    results: dict[str, list[dict]] = {"busy": [], "quiet": []}
    for round_ in range(args.runs):  # busy and quiet hours in turns: the machine's drift touches both
        for kind, (hour, folder) in (("busy", busy[round_]), ("quiet", quiet[round_])):
            rows = sum(1 for p in folder.glob("*.jsonl.gz") for _ in gzip.open(p, "rt"))
            base = baseline(env["WAREHOUSE_DSN"], folder)
            shutil.copytree(folder, home / "landing" / folder.parent.name / folder.name)  # the hour lands
            key = f"{hour:%Y-%m-%d-%H:00}"
            hourly = run_job(env, "hourly_usage_job", {RANGE_START_TAG: key, RANGE_END_TAG: key})
            reports = run_job(env, "reports_job", {})
            results[kind].append({"rows": rows, "baseline": base, "hourly": hourly, "reports": reports,
                                  "total": hourly["wall"] + reports["wall"]})
            say(f"{kind} hour {key}: {rows:,} lines, {hourly['wall'] + reports['wall']:.1f} s end to end "
                f"(hourly {hourly['wall']:.1f} s, reports {reports['wall']:.1f} s; baseline {base:.2f} s)")
    report(results, args)


def report(results: dict[str, list[dict]], args) -> None:
    median = statistics.median
    print(f"\nEnd-to-end hourly latency on a warehouse of {args.events:,} events ({args.days} days); "
          f"medians of {args.runs} rounds, busy and quiet hours in turns")
    print(f"{'':<66} {'busy hour':>11} {'quiet hour':>11}")
    busy, quiet = results["busy"], results["quiet"]

    def line(label: str, pick) -> None:
        values = [median(pick(r) for r in rs) for rs in (busy, quiet)]
        print(f"{label:<66} {values[0]:>11.2f} {values[1]:>11.2f}")

    line("lines landed", lambda r: r["rows"])
    line("baseline: plain COPY + one GROUP BY (s)", lambda r: r["baseline"])
    line("end to end (s)", lambda r: r["total"])
    line("  ratio to the baseline", lambda r: r["total"] / r["baseline"])
    for job in ("hourly", "reports"):
        line(f"  {job} run, wall (s)", lambda r, j=job: r[j]["wall"])
        line("    process start to first step (s)", lambda r, j=job: r[j]["start-up"])
        for step in sorted(busy[0][job]["steps"]):
            line(f"    step {step[:56]} (s)", lambda r, j=job, s=step: r[j]["steps"].get(s, 0.0))
    print("targets: end to end <= 60 s for a busy hour, <= 20 s for a quiet one")


if __name__ == "__main__":
    main()
