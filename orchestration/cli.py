"""The `warehouse` command: run the demo, generate sample logs, open the Dagster UI.

    warehouse demo        generate 7 days of sample logs and materialize every partition
    warehouse generate    write sample usage logs into the landing zone
    warehouse ui          start the Dagster UI (dagster dev) on the same warehouse
    warehouse env         print the environment that `dagster` commands need (eval it in a shell)
    warehouse sources     list the source specs, or try one on a file: warehouse sources --try FILE
    warehouse release     move what stops a failed hour's gate to the quarantine (audited), then rerun it
    warehouse access      create the roles and logins, grants and row-level security; add an analyst
    warehouse report      render the nightly report of a day (through Dagster: it shows in the UI)
    warehouse export      write a CSV of an org's failed requests and anomalies over a time range
    warehouse load        ingest, gate, roll up and publish your own landing hours (--from, --to), then the reports
    warehouse docs        generate the dbt docs site (models, columns, tests, exposures, lineage) and serve it
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from orchestration.database import WarehouseUnreachable, dagster_storage_url, redacted, warehouse_dsn
from orchestration.settings import PROJECT_ROOT, SettingError, Settings


def say(message: str) -> None:
    print(f"[warehouse {datetime.now():%H:%M:%S}] {message}", flush=True)


def prepare_environment(settings: Settings) -> dict[str, str]:
    """Start the warehouse if embedded, and set DAGSTER_HOME / DAGSTER_PG_URL / WAREHOUSE_DSN."""
    dsn = warehouse_dsn(settings)
    home = settings.state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {"WAREHOUSE_DSN": dsn, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_storage_url(settings),
           "WAREHOUSE_LANDING_DIR": str(settings.landing_dir)}
    os.environ.update(env)
    return env


def run_partitions(first_hour: datetime, last_hour: datetime, reference: bool = True,
                   tags: dict[str, str] | None = None) -> list:
    """Load the reference data (unless `reference` is False), materialize every hour in the range as one
    run, then rebuild the reports; recorded in Dagster's storage (visible in the UI). Returns the runs'
    results, stopping at a failure."""
    import dagster as dg

    from orchestration.dbt_project import prepare_manifest
    from orchestration.runs import materialize_hours, materialize_reference, materialize_reports

    prepare_manifest(refresh=True)  # never run an edited model from a stale manifest
    results = []
    with dg.DagsterInstance.get() as instance:
        # Dagster stores one event per asset and partition, each on a new connection by default;
        # one pooled connection makes the 168-partition run about a fifth faster
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)
        steps = ((lambda: materialize_reference(instance),) if reference else ()) + (
            lambda: materialize_hours(first_hour, last_hour, instance, tags=tags),
            lambda: materialize_reports(instance))  # the reports: what reports_after_marts_sensor does
        for step in steps:
            results.append(step())
            if not results[-1].success:
                break
    return results


def summary(dsn: str) -> dict[str, int]:
    from orchestration.database import cursor

    with cursor(dsn) as cur:
        cur.execute("""select count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),
                              coalesce(sum(rows_duplicate), 0), coalesce(sum(rows_quarantined), 0),
                              count(*) filter (where status = 'failed')
                       from raw.ingestion_batches where status in ('loaded', 'failed')""")
        files, read, loaded, duplicate, quarantined, failed = cur.fetchone()
        counts = {"files": files, "read": read, "loaded": loaded, "duplicate": duplicate,
                  "quarantined": quarantined, "unreadable files": failed}
        for table in SUMMARY_TABLES:
            cur.execute("select to_regclass(%s) is not null", (table,))
            if cur.fetchone()[0]:
                cur.execute(f"select count(*) from {table}")
                counts[table] = cur.fetchone()[0]
    return counts


SUMMARY_TABLES = ("raw.usage_events", "staging.stg_usage__events", "marts.fct_usage_hourly", "marts.fct_usage_daily",
                  "marts.fct_event_costs", "marts.fct_cost_daily", "marts.fct_anomalies_hourly", "marts.insights")


def spend_lines(dsn: str) -> list[str]:
    """This month's spend per org against its budget, from marts.fct_org_monthly_spend."""
    from orchestration.database import cursor

    with cursor(dsn) as cur:
        cur.execute("select to_regclass('marts.fct_org_monthly_spend') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute("""select distinct on (org_id) org_id, month_local, month_to_date_usd, budget_usd,
                              forecast_month_end_usd, budget_crossing_day, budget_crossing_is_projected
                       from marts.fct_org_monthly_spend order by org_id, month_local desc""")
        rows = cur.fetchall()
        cur.execute("select count(*), coalesce(sum(unpriced_requests), 0) from marts.fct_cost_variance_daily"
                    " where unpriced_requests > 0")
        days, unpriced = cur.fetchone()
    lines = [f"  {'org':<14} {'month':<8} {'to date $':>10} {'budget $':>9} {'forecast $':>11}  budget crossed"]
    for org, month, to_date, budget, forecast, crossing, projected in rows:
        when = "-" if crossing is None else f"{crossing:%Y-%m-%d}" + (" (projected)" if projected else "")
        budget_text = f"{budget:,.0f}" if budget is not None else "-"
        lines.append(f"  {org:<14} {month:%Y-%m}  {to_date:>10,.2f} {budget_text:>9} {forecast:>11,.2f}  {when}")
    if unpriced:
        lines.append(f"  {unpriced:,} requests had no price (see marts.insights)")
    return lines


def insight_lines(dsn: str, limit: int = 5) -> list[str]:
    """The latest day's open findings with the most at stake, from marts.insights."""
    from orchestration.database import cursor

    with cursor(dsn) as cur:
        cur.execute("select to_regclass('marts.insights') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute("""select day, severity, org_id, title, monthly_savings_usd, at_risk_usd, affected_requests
                       from marts.insights
                       where day = (select max(day) from marts.insights) and status <> 'resolved'
                       order by impact_score desc, insight_id limit %s""", (limit,))
        rows = cur.fetchall()
    lines = [f"  top insights of {rows[0][0]:%Y-%m-%d} (all in marts.insights):"] if rows else []
    for _, severity, org, title, savings, at_risk, affected in rows:
        stake = (f"saves ${savings:,.2f}/month" if savings is not None else
                 f"${at_risk:,.2f} over budget" if at_risk is not None else f"{affected or 0:,} requests")
        lines.append(f"    [{severity}] {org}: {title} ({stake})")
    return lines


def demo(args: argparse.Namespace) -> int:
    from samples.synthetic import Defects, default_start, generate

    started = time.monotonic()
    settings = Settings.from_env()
    say("starting the warehouse database" + ("" if settings.dsn else f" (embedded, {settings.state_dir}/pgdata)"))
    env = prepare_environment(settings)

    start = default_start(args.days)
    say(f"generating {args.days} days x {args.events_per_day:,} events/day from {start:%Y-%m-%d %H:00} UTC "
        f"into {settings.landing_dir}")
    manifest = generate(settings.landing_dir, start, args.days, args.events_per_day, args.seed,
                        Defects().scaled(args.defect_scale), progress=say)
    say(f"wrote {manifest.lines:,} lines in {manifest.files} hourly files "
        f"(planted: {', '.join(f'{v:,} {k}' for k, v in sorted(manifest.planted.items()))})")

    last_hour = start + timedelta(days=args.days) - timedelta(hours=1)
    say(f"loading the price catalog and reference/, then materializing {args.days * 24} hourly partitions "
        "as one run: ingest -> quality gate -> dbt")
    results = run_partitions(start, last_hour)
    ok = len(results) == 3 and all(r.success for r in results)
    elapsed = time.monotonic() - started
    counts = summary(env["WAREHOUSE_DSN"])

    print()
    runs = ", ".join(f"{r.job_def.name} {r.run_id[:8]}" for r in results)
    print(f"Runs {runs}: {'SUCCESS' if ok else 'FAILED'} in {elapsed:.0f} s")
    print(f"  events read        {counts['read']:>10,}  ({counts['files']} files)")
    print(f"  loaded             {counts['loaded']:>10,}")
    print(f"  duplicates         {counts['duplicate']:>10,}")
    print(f"  quarantined        {counts['quarantined']:>10,}  (see raw.quarantine for line and reason)")
    adds_up = counts["read"] == counts["loaded"] + counts["duplicate"] + counts["quarantined"]
    print(f"  read = loaded + duplicates + quarantined: {'yes' if adds_up else 'NO'}")
    for table in SUMMARY_TABLES:
        print(f"  {table:<26} {counts.get(table, 0):>10,} rows")
    for line in spend_lines(env["WAREHOUSE_DSN"]) + insight_lines(env["WAREHOUSE_DSN"]):
        print(line)
    if ok:
        import dagster as dg

        from orchestration.runs import materialize_report

        day = newest_day(env["WAREHOUSE_DSN"])
        with dg.DagsterInstance.get() as instance:
            rendered = day is not None and materialize_report(day, instance).success
        ok = ok and rendered
        print(f"  nightly report of {day}: {settings.reports_dir / str(day) / 'index.html'}" if rendered
              else "  nightly report: FAILED (see the run in the UI)")
    print(f"  warehouse: {redacted(env['WAREHOUSE_DSN'])}")
    print(f"  landing zone: {settings.landing_dir}")
    print("  Dagster UI on the same data: .venv/bin/warehouse ui   (then open http://127.0.0.1:3000)")
    return 0 if ok and adds_up else 1


def ui(args: argparse.Namespace) -> int:
    env = prepare_environment(Settings.from_env())
    say(f"DAGSTER_HOME={env['DAGSTER_HOME']}; starting dagster dev on http://127.0.0.1:{args.port}")
    dagster = Path(sys.executable).parent / "dagster"
    os.environ["PATH"] = f"{dagster.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # dbt, dagster for subprocesses
    os.chdir(env["DAGSTER_HOME"])  # run where the instance's dagster.yaml lives
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                            "-p", str(args.port)])


def print_env(args: argparse.Namespace) -> int:
    for name, value in prepare_environment(Settings.from_env()).items():
        print(f"export {name}='{value}'")
    return 0


def sources(args: argparse.Namespace) -> int:
    from ingestion.preview import preview, source_for
    from ingestion.sources import SourceSpecError, load_specs

    settings = Settings.from_env()
    try:
        specs = load_specs(settings.sources_dir)
        if args.try_file is None:
            for spec in specs:
                where = f"table {spec.database['table']}" if spec.database else f"files {spec.files}"
                print(f"{spec.name:<24} {spec.format:<8} {where}  ({spec.path})")
            print(f"{'landing':<24} {'built-in':<8} other *.jsonl, *.ndjson, *.csv (gzip allowed) and *.parquet files")
            return 0
        path = Path(args.try_file)
        spec = source_for(path, specs)
        print(f"{path.name}: read by source '{spec.name}' ({spec.format})")
        for line in preview(path, spec, args.rows):
            print(line)
        return 0
    except (SourceSpecError, OSError, EOFError, ValueError) as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 2


def parse_hour(text: str) -> datetime:
    """A landing hour, as a partition key (2026-05-05-01:00) or in ISO 8601 (2026-05-05T01, ...T01:00Z); UTC."""
    from datetime import UTC

    cleaned = text.strip().replace(" ", "T")
    if len(cleaned) == 16 and cleaned[10] == "-":  # a partition key: YYYY-MM-DD-HH:MM
        cleaned = cleaned[:10] + "T" + cleaned[11:]
    if len(cleaned) == 13:  # YYYY-MM-DDTHH
        cleaned += ":00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise SettingError(f"{text!r} is not an hour; write it as 2026-05-05T01 (UTC) or as the partition key "
                           "2026-05-05-01:00") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.minute or moment.second or moment.microsecond:
        raise SettingError(f"{text!r} is not the start of an hour; landing hours start at minute 0")
    return moment


def load(args: argparse.Namespace) -> int:
    from orchestration.partitions import HISTORY_START, hourly_partitions
    from orchestration.tags import LATENESS_TAG

    settings = Settings.from_env()
    first, last = parse_hour(args.first), parse_hour(args.last or args.first)
    if last < first:
        raise SettingError(f"--to {args.last} is before --from {args.first}")
    start = hourly_partitions.time_window_for_partition_key(hourly_partitions.get_first_partition_key()).start
    if first < start:
        raise SettingError(f"--from {args.first} is before WAREHOUSE_HISTORY_START ({HISTORY_START[:10]}): set "
                           f"WAREHOUSE_HISTORY_START={first:%Y-%m-%d} (for the UI too) and run again")
    if args.max_lateness_days is not None and args.max_lateness_days <= 0:
        raise SettingError(f"--max-lateness-days {args.max_lateness_days} must be a positive number of days")
    env = prepare_environment(settings)
    tags = {LATENESS_TAG: str(args.max_lateness_days)} if args.max_lateness_days else {}
    hours = int((last - first).total_seconds() // 3600) + 1
    say(f"loading {hours} landing hours from {settings.landing_dir}: {first:%Y-%m-%d %H:00} to {last:%Y-%m-%d %H:00} "
        "UTC as one run (ingest -> quality gates -> dbt -> publication), then the reports"
        + (f"; events up to {args.max_lateness_days} days older than their landing hour are kept" if tags else ""))
    results = run_partitions(first, last, tags=tags)
    for r in results:
        say(f"{r.job_def.name} {r.run_id[:8]}: {'SUCCESS' if r.success else 'FAILED'}")
    counts = summary(env["WAREHOUSE_DSN"])
    say(f"the warehouse now holds: read {counts['read']:,} = loaded {counts['loaded']:,} + duplicates "
        f"{counts['duplicate']:,} + quarantined {counts['quarantined']:,} (raw.quarantine says why)")
    if not all(r.success for r in results):
        say("a run failed: open it in the UI (.venv/bin/warehouse ui); a failed gate names its hours and the fix")
        return 1
    return 0


def release(args: argparse.Namespace) -> int:
    import getpass

    from ingestion.release import release_hour
    from ingestion.validation import MAX_LATENESS
    from orchestration.database import connect, cursor

    settings = Settings.from_env()
    env = prepare_environment(settings)
    dsn = env["WAREHOUSE_DSN"]
    if args.hour and (args.first or args.last):
        raise SettingError("give one landing hour, or a range with --from and --to, not both")
    if args.hour:
        hours = [parse_hour(args.hour)]
    elif args.first or args.last:
        if not (args.first and args.last):
            raise SettingError("--from and --to go together: the first and the last landing hour to release")
        first, last = parse_hour(args.first), parse_hour(args.last)
        hours = [first + timedelta(hours=i) for i in range(int((last - first) / timedelta(hours=1)) + 1)]
    else:
        with cursor(dsn) as cur:
            cur.execute("select to_regclass('raw.landing_hours') is not null")
            found = cur.fetchone()[0]
            if found:
                cur.execute("select landing_hour from raw.landing_hours where gate_status = 'failed' order by 1")
            hours = [hour for (hour,) in cur.fetchall()] if found else []
        if not hours:
            say("no landing hour has a failed gate: nothing to release")
            return 0
    max_lateness = min(MAX_LATENESS, timedelta(days=settings.raw_retention_days))
    by = args.by or getpass.getuser()
    changed = False
    conn = connect(dsn)
    try:
        for hour in hours:
            done = release_hour(conn, hour, by, args.note, settings.max_quarantine_share, max_lateness)
            changed |= done.changed_anything
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(done.reasons.items()))
            say(f"{hour:%Y-%m-%d %H:00} UTC: {done.rows:,} rows to raw.quarantine, {done.copies:,} extra copies "
                f"dropped{f' ({reasons})' if reasons else ''}; share of quarantined rows accepted for "
                f"{', '.join(done.files_accepted) or 'no file'}")
    finally:
        conn.close()
    if not changed:
        say("nothing to release: every row of these hours meets the contract and no file is over the quarantined "
            "share; if a gate still fails, the defect is not in the rows (read audit.check_results)")
        return 1
    say(f"released by {by}{f' ({args.note})' if args.note else ''}; recorded in audit.releases")
    if args.no_run:
        say("the hours are pending: their next run gates them again")
        return 0
    results = run_partitions(min(hours), max(hours), reference=False)
    ok = all(r.success for r in results)
    say(f"reran {len(hours)} hour(s): {', '.join(f'{r.job_def.name} {r.run_id[:8]}' for r in results)}: "
        f"{'SUCCESS' if ok else 'FAILED (see the run in the Dagster UI and audit.check_results)'}")
    return 0 if ok else 1


def access(args: argparse.Namespace) -> int:
    import getpass

    from orchestration.access import ANALYST, BI, FINANCE, PIPELINE, AccessError, add_analyst, setup_access
    from orchestration.database import connect

    settings = Settings.from_env()
    env = prepare_environment(settings)
    conn = connect(env["WAREHOUSE_DSN"])
    try:
        done = setup_access(conn, settings)
        if args.what and not args.analyst:
            raise SettingError("name the analyst: warehouse access analyst NAME --org ORG")
        if args.analyst:
            if not args.orgs:
                raise SettingError("an analyst needs at least one --org (the org_id whose rows they may read)")
            password = os.environ.get("WAREHOUSE_ANALYST_PASSWORD") or (
                getpass.getpass(f"password for {args.analyst}: ") if sys.stdin.isatty() else None)
            add_analyst(conn, args.analyst, args.orgs, password)
            done.append(f"{args.analyst} (member of {ANALYST}; rows of {', '.join(args.orgs)})")
    except AccessError as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    say(f"roles {PIPELINE}, {BI}, {FINANCE}, {ANALYST} and the grants of every published mart are in place")
    for line in done:
        say(f"login {line}")
    if not done:
        say("no login created: set WAREHOUSE_BI_PASSWORD (or _FINANCE_, _PIPELINE_) and run this again")
    return 0


def newest_day(dsn: str):
    """The newest complete UTC day in the marts (today is not complete), or None when they hold none."""
    from orchestration.database import cursor

    with cursor(dsn) as cur:
        cur.execute("select to_regclass('marts.fct_cost_daily') is not null")
        if not cur.fetchone()[0]:
            return None
        cur.execute("select max(day_utc) from marts.fct_cost_daily where day_utc < (now() at time zone 'UTC')::date")
        return cur.fetchone()[0]


def report(args: argparse.Namespace) -> int:
    import dagster as dg

    from orchestration.runs import materialize_report

    settings = Settings.from_env()
    env = prepare_environment(settings)
    if args.date:
        try:
            day = datetime.strptime(args.date, "%Y-%m-%d").date()
        except ValueError:
            print(f"warehouse report: --date {args.date!r} is not a day like 2026-11-30", file=sys.stderr)
            return 2
    else:
        day = newest_day(env["WAREHOUSE_DSN"])
        if day is None:
            print("warehouse report: the marts hold no day yet; run `warehouse demo` or load files first",
                  file=sys.stderr)
            return 2
    from orchestration.defs.report import daily_partitions

    if not daily_partitions.has_partition_key(day.isoformat()):
        first = daily_partitions.get_first_partition_key()
        print(f"warehouse report: --date {day} is outside the report's days ({first} to today, UTC)", file=sys.stderr)
        return 2
    with dg.DagsterInstance.get() as instance:
        result = materialize_report(day, instance)
    page = settings.reports_dir / day.isoformat() / "index.html"
    if not result.success:
        say(f"the report of {day} failed (run {result.run_id}); see the run in the UI")
        return 1
    say(f"the report of {day}: {page} (and a CSV per table beside it)")
    return 0


def export(args: argparse.Namespace) -> int:
    from orchestration.database import connect
    from orchestration.export import ExportError, export_incidents, parse_time

    settings = Settings.from_env()
    env = prepare_environment(settings)
    try:
        start, end = parse_time(args.first, "--from"), parse_time(args.last, "--to")
        conn = connect(env["WAREHOUSE_DSN"])
        try:
            done = export_incidents(conn, args.org, start, end, Path(args.out) if args.out else
                                    settings.state_dir / "exports", args.limit)
        finally:
            conn.close()
    except ExportError as exc:
        print(f"warehouse export: {exc}", file=sys.stderr)
        return 2
    more = f"; capped at {args.limit:,} rows: more matched, narrow the range" if done.truncated else ""
    say(f"{done.rows:,} incident rows of {args.org} to {done.path}{more}")
    return 0


def docs(args: argparse.Namespace) -> int:
    from orchestration.docs_site import DocsError, generate, server

    env = prepare_environment(Settings.from_env())
    say("generating the dbt docs site from the warehouse (dbt docs generate)")
    try:
        folder = generate(env["WAREHOUSE_DSN"])
    except DocsError as exc:
        print(f"warehouse docs: {exc}", file=sys.stderr)
        return 1
    say(f"written to {folder} (static_index.html opens without a server)")
    if args.no_serve:
        return 0
    site = server(folder, args.port)
    say(f"serving http://127.0.0.1:{site.server_port}/ (Ctrl-C stops it)")
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def erase(args: argparse.Namespace) -> int:
    import dagster as dg

    from ingestion.pseudonyms import KEY_SETTING
    from orchestration.database import connect
    from orchestration.dbt_project import prepare_manifest
    from orchestration.privacy import ErasureError, erase, mark_rebuilt, pending_rebuild
    from orchestration.runs import materialize_erasure, materialize_reports

    env = prepare_environment(Settings.from_env())
    conn = connect(env["WAREHOUSE_DSN"])
    try:
        if args.rebuild is not None:
            erasure_id, hours = args.rebuild, pending_rebuild(conn, args.rebuild)
        elif not (args.org and args.user):
            raise ErasureError("give --org and --user (or --rebuild ERASURE_ID to finish an erasure)")
        else:
            done = erase(conn, args.org, args.user, args.reference or "", os.environ.get(KEY_SETTING) or None)
            erasure_id, hours = done.erasure_id, (done.first_hour, done.last_hour) if done.first_hour else None
            say(f"erasure {erasure_id} ({args.org}): deleted {done.raw_events:,} raw events and "
                f"{done.quarantined_lines:,} quarantined lines; {sum(done.mart_rows.values()):,} mart rows now "
                f"read {done.token}; {done.audit_values:,} audit values scrubbed")
        if hours:
            say(f"rebuilding every mart over the event hours {hours[0]:%Y-%m-%d %H:00} to {hours[1]:%Y-%m-%d %H:00} "
                "UTC, then the reports")
            prepare_manifest(refresh=True)
            with dg.DagsterInstance.get() as instance:
                results = [materialize_erasure(hours[0], hours[1], erasure_id, instance)]
                if results[0].success:
                    results.append(materialize_reports(instance))
            if not all(r.success for r in results):
                say(f"the rebuild failed (run {results[-1].run_id[:8]}, in the UI); the user is out of raw and "
                    f"named nowhere, but rollups still count their requests: fix the cause, then run "
                    f"'warehouse erase --rebuild {erasure_id}'")
                return 1
            mark_rebuilt(conn, erasure_id)
        say(f"erasure {erasure_id} done: recorded in audit.erasures")
        return 0
    except ErasureError as exc:
        print(f"warehouse erase: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()


def dashboard(args: argparse.Namespace) -> int:
    from orchestration.dashboard.page import DASHBOARDS_DIR, DashboardError, load
    from orchestration.dashboard.server import Dashboard, login_dsn, server

    settings = Settings.from_env()
    if not settings.finance_password:
        raise SettingError("WAREHOUSE_FINANCE_PASSWORD is not set: the dashboard logs in as the finance login "
                           f"({settings.finance_user}, read-only); set it and run 'warehouse access' once")
    env = prepare_environment(settings)
    spec = Path(args.spec) if args.spec else DASHBOARDS_DIR / "usage.yml"
    try:
        load(spec)
    except DashboardError as exc:
        print(f"warehouse dashboard: {exc}", file=sys.stderr)
        return 2
    board = Dashboard(spec, login_dsn(env["WAREHOUSE_DSN"], settings.finance_user, settings.finance_password),
                      settings.finance_user)
    site = server(board, args.port, args.host)
    say(f"serving {spec.name} at http://{args.host}:{site.server_port}/ as {settings.finance_user} (Ctrl-C stops it)")
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def metrics(args: argparse.Namespace) -> int:
    from orchestration.metrics import MetricsError, mf

    env = prepare_environment(Settings.from_env())
    try:
        return mf(args.mf_args or ["list", "metrics"], env["WAREHOUSE_DSN"]).returncode
    except MetricsError as exc:
        print(f"warehouse metrics: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warehouse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="generate sample logs and materialize every partition")
    run.add_argument("--days", type=int, default=7)
    run.add_argument("--events-per-day", type=int, default=20_000)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--defect-scale", type=float, default=1.0)
    run.set_defaults(handler=demo)
    commands.add_parser("generate", help="write sample usage logs (see warehouse generate --help)", add_help=False)
    serve = commands.add_parser("ui", help="start the Dagster UI on the same warehouse")
    serve.add_argument("--port", type=int, default=3000)
    serve.set_defaults(handler=ui)
    commands.add_parser("env", help="print DAGSTER_HOME, DAGSTER_PG_URL and WAREHOUSE_DSN").set_defaults(
        handler=print_env)
    check = commands.add_parser("sources", help="list the source specs, or try one on a file")
    check.add_argument("--try", dest="try_file", metavar="FILE", help="show what the warehouse would make of FILE")
    check.add_argument("--rows", type=int, default=10, help="rows to show with --try (default 10)")
    check.set_defaults(handler=sources)

    free = commands.add_parser("release", help="move what stops a failed hour's gate to the quarantine, then rerun it")
    free.add_argument("hour", nargs="?", help="the landing hour, e.g. 2026-05-05T01 (default: every failed hour)")
    free.add_argument("--from", dest="first", metavar="HOUR", help="the first of a range of landing hours")
    free.add_argument("--to", dest="last", metavar="HOUR", help="the last of a range of landing hours")
    free.add_argument("--note", help="why (kept in audit.releases)")
    free.add_argument("--by", help="who releases (default: the login name)")
    free.add_argument("--no-run", action="store_true", help="only release; the hours' next run gates them again")
    free.set_defaults(handler=release)

    roles = commands.add_parser("access", help="create the roles and logins, grants and row-level security")
    roles.add_argument("what", nargs="?", choices=["analyst"], help="analyst: add (or update) an analyst login")
    roles.add_argument("analyst", nargs="?", metavar="NAME", help="the analyst's login name")
    roles.add_argument("--org", dest="orgs", action="append", default=[], help="an org_id the analyst may read")
    roles.set_defaults(handler=access)

    own = commands.add_parser("load", help="ingest, gate, roll up and publish landing hours, then the reports")
    own.add_argument("--from", dest="first", required=True, metavar="HOUR",
                     help="first landing hour, e.g. 2026-05-05T00")
    own.add_argument("--to", dest="last", metavar="HOUR", help="last landing hour (default: --from)")
    own.add_argument("--max-lateness-days", type=int, metavar="DAYS",
                     help="for an import of old files: keep events up to DAYS older than their landing hour "
                          "(default: the 30-day lateness window within WAREHOUSE_RAW_RETENTION_DAYS)")
    own.set_defaults(handler=load)

    site = commands.add_parser("docs", help="generate the dbt docs site and serve it")
    site.add_argument("--port", type=int, default=8580)
    site.add_argument("--no-serve", action="store_true", help="only generate it")
    site.set_defaults(handler=docs)

    forget = commands.add_parser(
        "erase", help="erase a user on request: raw events, quarantine, every mart (rebuilt), audit samples",
        description="Deletes the user's events and quarantined lines, gives their rows in the marts an anonymous "
                    "id, rebuilds every mart over the hours their events were in, and records the erasure in "
                    "audit.erasures (no personal data).")
    forget.add_argument("--org", help="the user's org_id")
    forget.add_argument("--user", help="the user_id, as the application knows it")
    forget.add_argument("--reference", help="the request's ticket or case number, kept in audit.erasures")
    forget.add_argument("--rebuild", type=int, metavar="ERASURE_ID", help="finish an erasure whose rebuild failed")
    forget.set_defaults(handler=erase)

    board = commands.add_parser("dashboard", help="serve the usage dashboard (dashboards/usage.yml) on the marts")
    board.add_argument("--port", type=int, default=8590)
    board.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; "
                                                            "the dashboard has no login of its own)")
    board.add_argument("--spec", help="a dashboard spec (default: dashboards/usage.yml)")
    board.set_defaults(handler=dashboard)

    named = commands.add_parser(
        "metrics", help="query the semantic layer by metric name (MetricFlow's mf, on the published marts)",
        description="Runs MetricFlow's mf with these arguments on the published marts, e.g. "
                    "'warehouse metrics query --metrics cost_usd,error_rate --group-by metric_time__day,org'; "
                    "'warehouse metrics list metrics' names every metric (the default).")
    named.add_argument("mf_args", nargs=argparse.REMAINDER, help="mf's arguments")
    named.set_defaults(handler=metrics)

    nightly = commands.add_parser("report", help="render the nightly report of a UTC day (default: the newest)")
    nightly.add_argument("--date", help="the UTC day, e.g. 2026-11-30 (default: the newest day in the marts)")
    nightly.set_defaults(handler=report)

    out = commands.add_parser("export", help="write a CSV of an org's failed requests and anomalies")
    out.add_argument("what", choices=["incidents"])
    out.add_argument("--org", required=True, help="the org_id")
    out.add_argument("--from", dest="first", required=True, help="start (UTC), e.g. 2026-11-30 or 2026-11-30T14")
    out.add_argument("--to", dest="last", required=True, help="end, excluded (UTC)")
    out.add_argument("--limit", type=int, default=100_000, help="at most this many rows (default 100,000)")
    out.add_argument("--out", help="folder of the CSV (default: WAREHOUSE_STATE_DIR/exports)")
    out.set_defaults(handler=export)

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        from samples.synthetic import main as generate_main

        return generate_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (SettingError, WarehouseUnreachable) as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
