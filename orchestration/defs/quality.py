"""Where data is checked: a Great Expectations suite (expectations/*.json) on each layer, run as a blocking
Dagster asset check on its asset and partition.

critical expectations fail with severity ERROR and stop what is downstream in the run: a failed raw
suite keeps the hour's rows out of dbt; a failed mart suite keeps the rebuilt rows out of the
published marts. warning expectations fail with severity WARN: recorded, and the run goes on.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg

from ingestion.release import SHARE_MIN_ROWS
from orchestration.check_history import record_check
from orchestration.database import sqlalchemy_url
from orchestration.partitions import RunHours, hourly_partitions, hours_of_run
from orchestration.publication import last_publication
from orchestration.resources import WarehouseResource
from orchestration.settings import Settings

# rows a mart suite checks: those dbt rebuilt since the last publication (what publishing would copy)
RAW_EVENTS = dg.AssetKey(["raw", "usage_events"])
UNPUBLISHED = "built_at > (select coalesce(max(published_at), '-infinity') from audit.publications)"


@dataclass(frozen=True)
class Gate:
    suite: str  # expectations/<suite>.json
    asset: dg.AssetKey
    query: Callable[[datetime, datetime], str]  # the rows to check, for a window of landing hours
    parameters: Callable[[Settings], dict]  # thresholds that are settings; the contract's limits come with every suite
    # "decides": the raw-level suites pass or fail the hours (staging reads only hours that passed);
    # "fails": a failure keeps the hours out of staging too, a pass changes nothing; "": the hours stay as they are
    landing_hours: str
    fix: str  # what to do when it fails; {hours} is the run's landing hours, as `warehouse release` takes them
    detail: Callable[[object, datetime, datetime, Settings], str] | None = None  # what failed, found in the database

    @property
    def partitioned(self) -> bool:
        """Only raw/usage_events is partitioned by landing hour (see orchestration/partitions.RunHours)."""
        return self.asset == RAW_EVENTS


def _raw_rows(start: datetime, end: datetime) -> str:
    return f"""select *, extract(epoch from landing_hour - event_time) / 3600 as hours_before_landing
               from raw.usage_events
               where landing_hour >= '{start.isoformat()}' and landing_hour < '{end.isoformat()}'"""




def _ledger_rows(start: datetime, end: datetime) -> str:
    window = f"landing_hour >= '{start.isoformat()}' and landing_hour < '{end.isoformat()}'"
    return f"""with batches as (select * from raw.ingestion_batches where {window} and status = 'loaded'),
               loaded as (select batch_id, count(*) as n from raw.usage_events where {window} group by 1),
               quarantined as (select batch_id, count(*) as n from raw.quarantine
                               where batch_id in (select batch_id from batches) group by 1)
               select b.landing_hour, b.source, b.file, b.rows_read,
                      b.rows_read - b.rows_loaded - b.rows_duplicate - b.rows_quarantined as unaccounted_rows,
                      b.rows_loaded - coalesce(l.n, 0) as loaded_rows_not_in_raw,
                      b.rows_quarantined - coalesce(q.n, 0) as quarantined_rows_not_in_quarantine,
                      case when b.rows_read >= {SHARE_MIN_ROWS} and not b.share_accepted
                           then b.rows_quarantined::float8 / b.rows_read end as quarantine_share
               from batches as b left join loaded as l using (batch_id) left join quarantined as q using (batch_id)"""


def _files_over_the_share(conn, start: datetime, end: datetime, settings: Settings) -> str:
    """The files a failed ledger suite is about, by name: those over the quarantined share."""
    with conn, conn.cursor() as cur:
        cur.execute("""select file, rows_quarantined, rows_read from raw.ingestion_batches
                       where landing_hour >= %s and landing_hour < %s and status = 'loaded' and not share_accepted
                         and rows_read >= %s and rows_quarantined::float8 / rows_read > %s order by file""",
                    (start, end, SHARE_MIN_ROWS, settings.max_quarantine_share))
        files = [f"{file} ({quarantined:,} of {read:,} rows quarantined, {quarantined / read:.0%})"
                 for file, quarantined, read in cur.fetchall()]
    return f"files over WAREHOUSE_MAX_QUARANTINE_SHARE={settings.max_quarantine_share:g}: {', '.join(files)}" \
        if files else ""


def _staged_rows(start: datetime, end: datetime) -> str:
    return f"""select event_id, org_id, event_hour, landing_hour, latency_ms,
                      event_hour = date_trunc('hour', event_time, 'UTC') as hour_matches_event_time,
                      is_error = (status = 'error') as error_matches_status,
                      input_tokens - cached_input_tokens - cache_write_tokens as uncached_input_tokens,
                      output_tokens - reasoning_tokens as non_reasoning_output_tokens
               from staging.stg_usage__events
               where landing_hour >= '{start.isoformat()}' and landing_hour < '{end.isoformat()}'"""


def _hourly_rows(start: datetime, end: datetime) -> str:
    return f"""select hour_utc, org_id, service, provider, model, requests,
                      requests - successes - errors as unbalanced_requests,
                      latency_ms_sum / nullif(latency_ms_count, 0) as mean_latency_ms,
                      input_tokens - cached_input_tokens - cache_write_tokens as uncached_input_tokens,
                      errors::float8 / nullif(requests, 0) as error_rate
               from build.fct_usage_hourly where {UNPUBLISHED}"""


def _event_cost_rows(start: datetime, end: datetime) -> str:
    return f"""select event_id, org_id, cost_usd,
                      cost_usd - (cost_request_usd + cost_input_usd + cost_cache_read_usd + cost_cache_write_usd
                                  + cost_output_usd + cost_reasoning_usd) as cost_parts_gap_usd,
                      is_priced <> (cost_usd is not null) as cost_does_not_match_priced
               from build.fct_event_costs where {UNPUBLISHED}"""


def _lateness_hours(settings: Settings) -> dict:
    from ingestion.validation import MAX_LATENESS, event_time_window

    hour = datetime(2000, 1, 1)
    latest = event_time_window(hour)[1]  # the loader's own bound for an event younger than its landing hour
    return {"min_hours_before_landing": (hour - latest).total_seconds() / 3600,
            "max_hours_before_landing": min(MAX_LATENESS.days, settings.raw_retention_days) * 24}


def contract_parameters() -> dict:
    """The event contract's ranges and allowed values as suite parameters (min_<field>, max_<field>,
    allowed_<field>): the gates judge with the numbers the loader checked."""
    from ingestion.contract import FIELDS

    parameters = {}
    for f in FIELDS:
        parameters |= {f"min_{f.name}": f.min} if f.min is not None else {}
        parameters |= {f"max_{f.name}": f.max} if f.max is not None else {}
        parameters |= {f"allowed_{f.name}": list(f.values)} if f.values else {}
    return parameters


RERUN = "then rematerialize the partition (files already loaded are skipped)"
RELEASE = ("move the rows that break the contract to the quarantine with `warehouse release {hours}` (recorded in "
           "audit.releases; it reruns the hours), or deliver the corrected file again under the same name (it "
           "replaces the file's earlier rows) and rematerialize")
GATES = (
    Gate("raw_usage_events", dg.AssetKey(["raw", "usage_events"]), _raw_rows, _lateness_hours, "decides",
         f"{RELEASE}; a defect in the loader or the suite (expectations/raw_usage_events.json) needs a fix "
         "first; the hours' rows stay out of the marts until then"),
    Gate("ingestion_ledger", dg.AssetKey(["raw", "usage_events"]), _ledger_rows,
         lambda s: {"max_quarantine_share": s.max_quarantine_share}, "decides",
         "for files over the quarantined share, read their reasons in raw.quarantine, then fix the source (or "
         "its spec in WAREHOUSE_SOURCES_DIR) and deliver the file again, or accept the share with "
         "`warehouse release {hours}` (recorded in audit.releases; the files' good rows then go through), or "
         "raise WAREHOUSE_MAX_QUARANTINE_SHARE; for rows missing or extra, compare raw.ingestion_batches with "
         f"raw.usage_events and raw.quarantine by batch_id (a loader bug); {RERUN}",
         detail=_files_over_the_share),
    # staging's rows come from hours the raw suites passed; a failure here takes them back out, so no later
    # run (the next hour of the same day, a late-event refresh) publishes a rollup built on them
    Gate("stg_usage__events", dg.AssetKey(["staging", "stg_usage__events"]), _staged_rows, lambda s: {}, "fails",
         f"for rows that break the contract, {RELEASE}; otherwise fix "
         "dbt_project/models/staging/stg_usage__events.sql; the hours stay out of the marts and the published "
         f"marts keep their last good data; {RERUN}"),
    Gate("fct_usage_hourly", dg.AssetKey(["marts", "fct_usage_hourly"]), _hourly_rows,
         lambda s: {"max_hourly_error_rate": s.max_hourly_error_rate}, "",
         "fix the rollup model (dbt_project/models/marts/fct_usage_hourly.sql) or its inputs; the published "
         f"marts keep their last good data; {RERUN}"),
    Gate("fct_event_costs", dg.AssetKey(["marts", "fct_event_costs"]), _event_cost_rows,
         lambda s: {"max_cost_per_request_usd": s.max_cost_per_request_usd}, "",
         "look for a duplicate row in reference.catalog_prices, reference.model_matches or "
         "reference/price_overrides.csv (a doubled price join), or a wrong price; the published marts keep "
         f"their last good data; {RERUN}"),
)


def with_publication_time(warehouse: WarehouseResource, query: str) -> str:
    """The query with the last publication's time written in as a literal: behind a subquery the planner
    could not tell a run's rows from the whole mart and scanned all 10M event costs (1.4 s a suite)."""
    if UNPUBLISHED not in query:
        return query
    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            since = cur.mogrify("built_at > %s", (last_publication(cur),)).decode()
    finally:
        conn.close()
    return query.replace(UNPUBLISHED, since)


def run_gate(gate: Gate, context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from expectations.runner import run_suite

    run = hours_of_run(context, f"{gate.suite}_suite")
    window = run.window
    settings = warehouse.settings
    parameters = {**contract_parameters(), **gate.parameters(settings)}
    if "max_hours_before_landing" in parameters:  # an import's own lateness window, as its loader used
        from orchestration.defs.ingestion import run_lateness

        parameters["max_hours_before_landing"] = run_lateness(context.run.tags, settings).total_seconds() / 3600
    partition = run.label
    query = with_publication_time(warehouse, gate.query(window.start, window.end))
    outcome = run_suite(gate.suite, sqlalchemy_url(warehouse.get_dsn()), query,
                        parameters=parameters, docs_dir=run_docs_dir(settings, context.run.run_id, partition))
    failed = outcome.failed_critical + outcome.failed_warning
    for o in outcome.failed_warning:
        context.log.warning(f"{gate.suite} warning on partition {partition}: {o.describe()}")
    severity = "error" if outcome.failed_critical else ("warn" if failed else "none")
    summary = "; ".join(o.describe() for o in failed) or f"all {len(outcome.outcomes)} expectations passed"

    conn = warehouse.connect()
    try:
        if outcome.failed_critical:
            detail = gate.detail(conn, window.start, window.end, settings) if gate.detail else ""
            summary += (f"; {detail}" if detail else "") + f". To fix: {gate.fix.format(hours=_hours_arg(run))}"
        if outcome.failed_critical:
            context.log.error(f"{gate.suite} failed on partition {partition}: {summary}")
        keys = run.keys
        hours = _per_hour(gate, conn, warehouse, keys, outcome, parameters) if len(keys) > 1 else {}
        if gate.landing_hours == "decides" or (gate.landing_hours == "fails" and not outcome.passed):
            if hours and gate.landing_hours:  # each hour by its own rows: a bad hour does not fail its neighbours
                for key, hour in hours.items():
                    if gate.landing_hours == "decides" or hour.failed_critical:
                        _set_landing_gate(conn, hourly_partitions.time_window_for_partition_key(key),
                                          passed=not hour.failed_critical, run_id=context.run.run_id)
            else:
                _set_landing_gate(conn, window, passed=outcome.passed, run_id=context.run.run_id)
        for key, hour in hours.items():
            if gate.partitioned:  # the UI's partition view of raw/usage_events: passed or failed hour by hour
                context.op_execution_context.log_event(hour.evaluation(gate, key))
            record_check(conn, check_name=f"{gate.suite}_suite", asset_key=gate.asset.to_user_string(),
                         partition=key, success=hour.passed, severity=hour.severity, observed=hour.observed,
                         run_id=context.run.run_id, summary=hour.summary)
        record_check(conn, check_name=f"{gate.suite}_suite", asset_key=gate.asset.to_user_string(),
                     partition=partition, success=not failed, severity=severity,
                     observed={"expectations": len(outcome.outcomes), "failed": [o.__dict__ for o in failed],
                               "docs": str(outcome.docs_page) if outcome.docs_page else None},
                     run_id=context.run.run_id, summary=summary)
    finally:
        conn.close()

    metadata = {
        "expectations": dg.MetadataValue.int(len(outcome.outcomes)),
        "failed_critical": dg.MetadataValue.int(len(outcome.failed_critical)),
        "failed_warning": dg.MetadataValue.int(len(outcome.failed_warning)),
        "failures": dg.MetadataValue.json([o.__dict__ for o in failed]),
    }
    if outcome.docs_page:  # a link the UI opens: this run's page, kept WAREHOUSE_DATA_DOCS_RETENTION_DAYS
        metadata["data_docs"] = dg.MetadataValue.url(outcome.docs_page.resolve().as_uri())
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.failed_critical else dg.AssetCheckSeverity.WARN,
        description=f"partition {partition}: {summary}", metadata=metadata)


@dataclass(frozen=True)
class HourResult:
    """One partition's part of a gate that ran over several hours at once."""
    passed: bool
    failed_critical: int
    rows: int
    summary: str
    observed: dict

    @property
    def severity(self) -> str:
        return "error" if self.failed_critical else ("none" if self.passed else "warn")

    def evaluation(self, gate: Gate, key: str) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=gate.asset, check_name=f"{gate.suite}_suite", passed=self.passed, partition=key,
            severity=dg.AssetCheckSeverity.ERROR if self.failed_critical else dg.AssetCheckSeverity.WARN,
            blocking=True, description=f"partition {key}: {self.summary}",
            metadata={"rows": dg.MetadataValue.int(self.rows),
                      "failed_critical": dg.MetadataValue.int(self.failed_critical),
                      "failures": dg.MetadataValue.json(self.observed.get("failed", []))})


def _per_hour(gate: Gate, conn, warehouse: WarehouseResource, keys: list[str], outcome,
              parameters: dict) -> dict[str, HourResult]:
    """Each hour's result in a run of many. The raw and staging suites judge rows of landing hours: when the
    run's rows pass, every hour passed; when they fail, each hour with rows is validated on its own, so the
    failure lands on the hours whose rows fail. The mart suites judge the rows the run rebuilt, which are not
    one landing hour's: they have the run's result only."""
    from expectations.runner import run_suite

    if not gate.landing_hours:
        return {}
    first = hourly_partitions.time_window_for_partition_key(keys[0]).start
    last = hourly_partitions.time_window_for_partition_key(keys[-1]).end
    with conn, conn.cursor() as cur:
        cur.execute(f"select landing_hour, count(*) from ({gate.query(first, last)}) as rows group by 1")
        rows = {hourly_partitions.get_partition_key_for_timestamp(h.timestamp()): n for h, n in cur.fetchall()}
    results = {}
    clean = not (outcome.failed_critical or outcome.failed_warning)
    for key in keys:
        n = rows.get(key, 0)
        if clean or n == 0:
            results[key] = HourResult(True, 0, n, f"all {len(outcome.outcomes)} expectations passed on {n:,} rows",
                                      {"rows": n})
            continue
        window = hourly_partitions.time_window_for_partition_key(key)
        hour = run_suite(gate.suite, sqlalchemy_url(warehouse.get_dsn()), gate.query(window.start, window.end),
                         parameters=parameters)
        failed = hour.failed_critical + hour.failed_warning
        summary = "; ".join(o.describe() for o in failed) or f"all {len(hour.outcomes)} expectations passed"
        results[key] = HourResult(not failed, len(hour.failed_critical), n, f"{summary} ({n:,} rows)",
                                  {"rows": n, "failed": [o.__dict__ for o in failed]})
    if outcome.failed_critical and not any(r.failed_critical for r in results.values()):
        # rows that fail only together (an id in two hours): no hour alone is to blame, so every hour is
        failed = outcome.failed_critical + outcome.failed_warning
        summary = "fails only with the run's other hours: " + "; ".join(o.describe() for o in failed)
        results = {key: HourResult(False, len(outcome.failed_critical), r.rows, summary,
                                   {"rows": r.rows, "failed": [o.__dict__ for o in failed], "scope": "run"})
                   for key, r in results.items()}
    return results


def run_docs_dir(settings: Settings, run_id: str, partition: str) -> Path:
    """This run's Data Docs folder (every suite of the run in it); older folders past the retention go."""
    import shutil
    import time

    root = settings.data_docs_dir
    if root.is_dir():
        cutoff = time.time() - settings.data_docs_retention_days * 86400
        for old in root.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
    label = partition.replace(":", "").replace("...", "_to_")
    return root / f"{label}-run-{run_id[:8]}"


def _set_landing_gate(conn, window, passed: bool, run_id: str) -> None:
    """Raw-level suites decide together: within one run, one failure keeps the hours failed."""
    with conn, conn.cursor() as cur:
        cur.execute("""update raw.landing_hours
                       set gate_status = case when not %(passed)s then 'failed'
                                              when run_id = %(run)s and gate_status = 'failed' then 'failed'
                                              else 'passed' end,
                           checked_at = now(), run_id = %(run)s
                       where landing_hour >= %(start)s and landing_hour < %(end)s""",
                    {"passed": passed, "run": run_id, "start": window.start, "end": window.end})
        # the staging view joins on gate_status: with statistics from before a backfill's gates passed, the
        # planner expects no passed hour and loops over the events once per hour (minutes on 1M events)
        cur.execute("analyze raw.landing_hours")


def _gate_check(gate: Gate) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=gate.asset, name=f"{gate.suite}_suite", blocking=True,
        partitions_def=hourly_partitions if gate.partitioned else None,
        description=f"Great Expectations suite expectations/{gate.suite}.json. Critical expectations fail with "
        "ERROR and stop what is downstream in the run; warnings are recorded only.")
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return run_gate(gate, context, warehouse)

    return _check


# one module-level name per check, so the code location finds them
(raw_usage_events_suite, ingestion_ledger_suite, stg_usage__events_suite, fct_usage_hourly_suite,
 fct_event_costs_suite) = (_gate_check(gate) for gate in GATES)


def _hours_arg(run: RunHours) -> str:
    """The run's landing hours as `warehouse release` takes them."""
    return run.first if run.first == run.last else f"--from {run.first} --to {run.last}"
