"""How cost grows with the warehouse: the same measures at each size, side by side (issue 22, item 4).

    .venv/bin/python bench/growth.py [--sizes 1000000,10000000,30000000] [--landing-cache /var/tmp/growth-cache]

For each size, 30 generated days (seed 5) are loaded by the real loader into a scratch database (as
bench/marts.py does: every hour but the last, marked as passed by the raw gate), then measured:
- load: the loader's wall time for the 719 hours, loaded one by one as the hours land (one worker),
  and its rows per second;
- baseline: one GROUP BY of the raw events into a table (median of 3), what every ratio is against;
- full build: `dbt build --full-refresh` of every model and test, once, and its publication;
- hourly job: the last hour loaded, then the hourly job's dbt build of it (median of --hour-runs),
  and the reports' rebuild that follows it;
- the six dashboard queries of bench/marts.py on the marts (median and p95 of --query-runs);
- disk: raw events (table, indexes), the marts (schema build: tables, indexes) and their published
  copy (schema marts), per million events.
The generated files are kept under --landing-cache, so a 30M run generates once. Prints one table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.marts import (  # noqa: E402
    BASELINE_GROUP_BY,
    DATABASE,
    QUERIES,
    connect,
    dbt,
    execute,
    hour_window,
    load_hour,
    p95,
    publish_all,
    query_times,
    say,
    server_dsn,
    settle,
    timed,
    warehouse,
)
from orchestration.database import drop_database  # noqa: E402
from orchestration.dbt_project import prepare_manifest  # noqa: E402

DISK = """
    select
        coalesce(sum(pg_table_size(c.oid)) filter (where n.nspname = 'raw' and c.relkind = 'r'
                                                    and c.relname like 'usage_events%%'), 0),
        coalesce(sum(pg_table_size(c.oid)) filter (where n.nspname = 'raw' and c.relkind = 'r'
                                                    and c.relname not like 'usage_events%%'), 0),
        coalesce(sum(pg_relation_size(c.oid)) filter (where n.nspname = 'raw' and c.relkind = 'i'), 0),
        coalesce(sum(pg_table_size(c.oid)) filter (where n.nspname = 'build' and c.relkind = 'r'), 0),
        coalesce(sum(pg_relation_size(c.oid)) filter (where n.nspname = 'build' and c.relkind = 'i'), 0),
        coalesce(sum(pg_total_relation_size(c.oid)) filter (where n.nspname = 'marts' and c.relkind = 'r'), 0),
        (select count(*) from raw.usage_events)
    from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
"""


def one_value(dsn: str, sql: str) -> tuple:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        conn.close()


def measure(events: int, landing: Path, target: Path, hour_runs: int, query_runs: int) -> dict:
    say(f"warehouse of {events:,} events")
    dsn, last, loaded = warehouse(events, landing)
    rows = one_value(dsn, "select count(*) from raw.usage_events")[0]
    group_by = statistics.median(timed(lambda: execute(dsn, BASELINE_GROUP_BY)) for _ in range(3))
    say(f"  baseline GROUP BY {group_by:.1f} s; full build")
    build = timed(lambda: dbt(dsn, target, "build", "--full-refresh"))
    publication = publish_all(dsn, target)
    say(f"  full build {build:.0f} s, publication {publication:.0f} s; settling, then the last hour")
    settle(dsn)
    conn = connect(dsn)
    try:
        list(load_hour(conn, landing, last))
    finally:
        conn.close()
    execute(dsn, "update raw.landing_hours set gate_status = 'passed'; analyze raw.landing_hours")
    hourly, reports = [], []
    for _ in range(hour_runs):  # a rerun of the same hour is the same work (delete + insert of that hour)
        hourly.append(timed(lambda: dbt(dsn, target, "build", "--exclude", "tag:reports", "--vars",
                                        hour_window(last))))
        reports.append(timed(lambda: dbt(dsn, target, "build", "--select", "tag:reports")))
    say(f"  hour {statistics.median(hourly):.1f} s, reports {statistics.median(reports):.1f} s; queries")
    queries = {name: query_times(dsn, sql, query_runs) for name, sql, _ in QUERIES}
    raw_table, raw_other, raw_index, marts_table, marts_index, published, final_rows = one_value(dsn, DISK)
    return {"events": final_rows, "load": loaded, "load_rows": rows, "group_by": group_by, "build": build,
            "publication": publication,
            "hourly": statistics.median(hourly), "reports": statistics.median(reports), "queries": queries,
            "disk": {"raw events, table": int(raw_table), "raw, id registry and ledger": int(raw_other),
                     "raw, every index": int(raw_index),
                     "marts, tables": int(marts_table), "marts, indexes": int(marts_index),
                     "marts, published copy": int(published)}}


def report(sizes: list[dict]) -> None:
    width = 14
    print("\nHow cost grows (30 days of events; one column per warehouse)")
    print(f"{'':<62}" + "".join(f"{s['events']:>{width},}" for s in sizes))

    def line(label: str, values) -> None:
        print(f"{label:<62}" + "".join(f"{v:>{width}}" for v in values))

    line("load, s (the real loader, 719 hours one by one)", [f"{s['load']:.1f}" for s in sizes])
    line("  rows per second", [f"{s['load_rows'] / s['load']:,.0f}" for s in sizes])
    line("baseline: one GROUP BY into a table, s", [f"{s['group_by']:.2f}" for s in sizes])
    line("full build (dbt build --full-refresh), s", [f"{s['build']:.1f}" for s in sizes])
    line("  x GROUP BY", [f"{s['build'] / s['group_by']:.1f}" for s in sizes])
    line("publication of every mart to schema marts, s", [f"{s['publication']:.1f}" for s in sizes])
    line("hourly job's dbt build of one hour, s", [f"{s['hourly']:.1f}" for s in sizes])
    line("  share of the full build", [f"{s['hourly'] / s['build']:.1%}" for s in sizes])
    line("the reports' rebuild after it, s", [f"{s['reports']:.1f}" for s in sizes])
    for name, _, _ in QUERIES:
        line(f"query: {name}, p95 ms", [f"{p95(s['queries'][name]) * 1000:.1f}" for s in sizes])
    for part in sizes[0]["disk"]:
        line(f"disk: {part}, MB per million events",
             [f"{s['disk'][part] / 2**20 / (s['events'] / 1e6):.0f}" for s in sizes])
    line("disk: all of it, GB", [f"{sum(s['disk'].values()) / 2**30:.2f}" for s in sizes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000,30000000")
    parser.add_argument("--hour-runs", type=int, default=3)
    parser.add_argument("--query-runs", type=int, default=30)
    parser.add_argument("--landing-cache", type=Path, help="keep the generated files here and reuse them")
    args = parser.parse_args()
    prepare_manifest(refresh=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = args.landing_cache or Path(tmp)
        target = Path(tmp) / "target"
        sizes = [measure(n, files / f"events-{n}", target, args.hour_runs, args.query_runs)
                 for n in (int(x) for x in args.sizes.split(","))]
    drop_database(server_dsn(), DATABASE)  # each size's warehouse: nothing in it is kept
    report(sizes)


if __name__ == "__main__":
    main()
