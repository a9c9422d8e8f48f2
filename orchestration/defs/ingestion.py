"""Where data enters: landed usage-log files and application tables become rows of raw.usage_events."""


from datetime import timedelta

import dagster as dg

from ingestion.parallel import load_hours
from ingestion.sources import SourceSpecError, load_specs
from ingestion.validation import MAX_LATENESS
from orchestration.partitions import hourly_partitions
from orchestration.resources import WarehouseResource
from orchestration.tags import LATENESS_TAG


@dg.asset(
    key=["raw", "usage_events"],  # the dbt source raw.usage_events: dagster-dbt links to it by this key
    group_name="ingestion",
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"postgres", "python"},
    description="Usage events that landed in each hour (JSON Lines, CSV and Parquet files, logs in other shapes "
    "through source specs, application tables by watermark), exactly once by event_id; rows that break the "
    "event contract go to raw.quarantine with their reasons.",
)
def usage_events(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    landing_dir = warehouse.settings.landing_dir
    try:
        specs = load_specs(warehouse.settings.sources_dir)
    except SourceSpecError as exc:  # a broken spec stops the run before any file is read
        raise dg.Failure(description=f"{exc}; fix the spec in WAREHOUSE_SOURCES_DIR and rerun") from None
    max_lateness = run_lateness(context.run.tags, warehouse.settings)
    if specs:
        context.log.info(f"source specs: {', '.join(f'{s.name} ({s.format}, files {s.files})' for s in specs)}")
    window = context.partition_time_window
    hours = [window.start + timedelta(hours=i) for i in range(int((window.end - window.start) / timedelta(hours=1)))]
    totals = dict.fromkeys(("files", "skipped", "failed", "read", "loaded", "duplicate", "quarantined",
                            "conflicting"), 0)
    loaded_batches: list[int] = []
    workers = warehouse.settings.ingest_workers
    for batch in load_hours(warehouse.get_dsn(), landing_dir, hours, specs, max_lateness, workers):
        totals["files"] += 1
        totals["skipped"] += batch.status == "skipped"
        totals["failed"] += batch.status == "failed"
        for key in ("read", "loaded", "duplicate", "quarantined", "conflicting"):
            totals[key] += getattr(batch, key)
        if batch.status == "loaded":
            loaded_batches.append(batch.batch_id)
        if batch.status == "failed":
            context.log.error(f"could not load {batch.file}: {batch.error}; then rematerialize "
                              "this partition (loaded files are skipped)")
        if len(hours) > 1 and totals["files"] % 50 == 0:
            context.log.info(f"ingested {totals['files']} files of {len(hours)} hours ({workers} workers): "
                             f"{totals['read']:,} rows read, {totals['loaded']:,} loaded")
    conn = warehouse.connect()
    try:
        late_hours = late_event_hours(conn, loaded_batches, window.start, window.end)
        ledger = hour_ledger(conn, window.start, window.end)
    finally:
        conn.close()
    for hour in hours:  # each partition shows its own hour's counts, not the run's totals
        key = hourly_partitions.get_partition_key_for_timestamp(hour.timestamp())
        context.add_asset_metadata({k: dg.MetadataValue.int(v) for k, v in ledger.get(hour, EMPTY_HOUR).items()},
                                   partition_key=key)
    if late_hours:
        context.log.info(f"late events for {len(late_hours)} earlier hours ({', '.join(late_hours[:10])}"
                         f"{', ...' if len(late_hours) > 10 else ''}): the rollups downstream recompute those hours")
    context.log.info(
        f"{totals['files']} files ({totals['skipped']} unchanged, {totals['failed']} unreadable): "
        f"read {totals['read']:,} = loaded {totals['loaded']:,} + duplicate {totals['duplicate']:,} "
        f"+ quarantined {totals['quarantined']:,}")
    # the run's late hours on every partition: late_event_sensor reads them from any of its materializations
    return dg.MaterializeResult(metadata={"late_event_hours": dg.MetadataValue.json(late_hours)})


def run_lateness(tags: dict, settings) -> timedelta:
    """How old an event may be before its landing hour: by default the lateness window, within what the raw
    layer keeps (an older event could not be rolled up with the rest of its hour); an import of old files
    sets its own (`warehouse load --max-lateness-days`)."""
    if LATENESS_TAG in tags:
        return timedelta(days=int(tags[LATENESS_TAG]))
    return min(MAX_LATENESS, timedelta(days=settings.raw_retention_days))


EMPTY_HOUR = {"files": 0, "read": 0, "loaded": 0, "duplicate": 0, "quarantined": 0, "conflicting": 0}


def hour_ledger(conn, window_start, window_end) -> dict:
    """What each landing hour holds, from its loaded batches (files loaded by earlier runs included)."""
    with conn, conn.cursor() as cur:
        cur.execute("""select landing_hour, count(*), sum(rows_read), sum(rows_loaded), sum(rows_duplicate),
                              sum(rows_quarantined), sum(rows_conflicting)
                       from raw.ingestion_batches
                       where landing_hour >= %s and landing_hour < %s and status = 'loaded'
                       group by 1""", (window_start, window_end))
        return {hour: dict(zip(EMPTY_HOUR, map(int, counts), strict=True)) for hour, *counts in cur.fetchall()}


def late_event_hours(conn, batch_ids: list[int], window_start, window_end) -> list[str]:
    """Partition keys of the hours before this window that the loaded batches added events to."""
    if not batch_ids:
        return []
    with conn, conn.cursor() as cur:
        cur.execute("""select distinct to_char(date_trunc('hour', event_time, 'UTC') at time zone 'UTC',
                                               'YYYY-MM-DD-HH24:00')
                       from raw.usage_events
                       where landing_hour >= %s and landing_hour < %s and batch_id = any(%s) and event_time < %s
                       order by 1""",
                    (window_start, window_end, batch_ids, window_start))
        return [key for (key,) in cur.fetchall()]
