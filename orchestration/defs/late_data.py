"""Late data: when ingestion reports events for hours already processed, refresh those hours downstream."""


import dagster as dg

from orchestration.tags import DBT_RUN_TAGS, RANGE_END_TAG, RANGE_START_TAG, REASON_TAG, TRANSFORM_GROUPS

RAW_EVENTS = dg.AssetKey(["raw", "usage_events"])

late_event_refresh_job = dg.define_asset_job(
    "late_event_refresh_job", tags=DBT_RUN_TAGS, executor_def=dg.in_process_executor,  # as hourly_usage_job
    selection=dg.AssetSelection.groups(*TRANSFORM_GROUPS),
    description="Rebuild the rollups of hours that late events were added to (requested by late_event_sensor).",
)


def hour_ranges(keys: list[str]) -> list[tuple[str, str]]:
    """Sorted hourly partition keys grouped into contiguous (first, last) ranges: one run per range."""
    from orchestration.partitions import hourly_partitions

    ranges: list[tuple[str, str]] = []
    previous = None
    for key in sorted(set(keys)):
        if previous is not None and hourly_partitions.get_next_partition_key(previous) == key:
            ranges[-1] = (ranges[-1][0], key)
        else:
            ranges.append((key, key))
        previous = key
    return ranges


@dg.sensor(job=late_event_refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads late_event_hours from each ingestion and reruns the rollups of those hours.")
def late_event_sensor(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RAW_EVENTS, after_storage_id=after), limit=1000, ascending=True).records
    if not records:
        return dg.SkipReason("no ingestion since the last check")
    late: dict[str, set[str]] = {}  # late hour -> runs that loaded events for it
    for record in records:
        entry = record.asset_materialization.metadata.get("late_event_hours")
        for hour in entry.value if entry else []:
            late.setdefault(hour, set()).add(record.run_id)
    last = records[-1].storage_id
    if not late:
        return dg.SensorResult(skip_reason=f"{len(records)} ingestions, no late events", cursor=str(last))
    ranges = hour_ranges(list(late))
    requests = [dg.RunRequest(
        run_key=f"late-events-{last}-{first}-{final}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: final,
              REASON_TAG: "late events loaded by run " + ", ".join(sorted(
                  {r for h, runs in late.items() if first <= h <= final for r in runs}))[:200]})
        for first, final in ranges]
    shown = ", ".join(first if first == final else f"{first}..{final}" for first, final in ranges)
    context.log.info(f"late events for {len(late)} hours: refreshing {shown}")
    return dg.SensorResult(run_requests=requests, cursor=str(last))
