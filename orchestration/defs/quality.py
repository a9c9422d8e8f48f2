"""Where data is checked: the raw suite gates every landing hour before dbt reads it."""


import json

import dagster as dg

from orchestration.database import sqlalchemy_url
from orchestration.defs.ingestion import usage_events
from orchestration.partitions import hourly_partitions
from orchestration.resources import WarehouseResource

RAW_SUITE = "raw_usage_events"


@dg.asset_check(
    asset=usage_events,
    name="raw_usage_events_suite",
    blocking=True,  # a critical failure stops the dbt models downstream in the same run
    partitions_def=hourly_partitions,
    description="Great Expectations suite expectations/raw_usage_events.json on the rows that landed in "
    "the partition. Critical expectations block the marts; warnings are recorded only.",
)
def raw_usage_events_suite(context: dg.AssetCheckExecutionContext,
                           warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from expectations.runner import run_suite

    window = context.partition_time_window
    dsn = warehouse.get_dsn()
    query = (f"select * from raw.usage_events where landing_hour >= '{window.start.isoformat()}' "
             f"and landing_hour < '{window.end.isoformat()}'")
    outcome = run_suite(RAW_SUITE, sqlalchemy_url(dsn), query)
    partition = _partition_label(context)
    failed = outcome.failed_critical + outcome.failed_warning
    for o in outcome.failed_critical:
        context.log.error(f"{RAW_SUITE} failed on partition {partition}: {o.describe()}. Fix the source rows "
                          "(or the expectation in expectations/raw_usage_events.json) and rematerialize "
                          "this partition; its rows stay out of the marts until then.")
    for o in outcome.failed_warning:
        context.log.warning(f"{RAW_SUITE} warning on partition {partition}: {o.describe()}")

    conn = warehouse.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select count(*) from raw.usage_events where landing_hour >= %s and landing_hour < %s",
                        (window.start, window.end))
            rows = cur.fetchone()[0]
            cur.execute("""update raw.landing_hours set gate_status = %s, checked_at = now(), run_id = %s
                           where landing_hour >= %s and landing_hour < %s""",
                        ("passed" if outcome.passed else "failed", context.run.run_id, window.start, window.end))
            cur.execute("""insert into audit.check_results (check_name, asset_key, partition_key, success,
                               severity, observed, run_id) values (%s, %s, %s, %s, %s, %s, %s)""",
                        (RAW_SUITE, "raw/usage_events", partition, not failed,
                         "error" if outcome.failed_critical else ("warn" if failed else "none"),
                         json.dumps({"rows": rows, "failed": [o.describe() for o in failed]}),
                         context.run.run_id))
    finally:
        conn.close()

    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.failed_critical else dg.AssetCheckSeverity.WARN,
        description=("; ".join(o.describe() for o in failed) or f"all {len(outcome.outcomes)} expectations passed"),
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "expectations": dg.MetadataValue.int(len(outcome.outcomes)),
            "failed_critical": dg.MetadataValue.int(len(outcome.failed_critical)),
            "failed_warning": dg.MetadataValue.int(len(outcome.failed_warning)),
            "failures": dg.MetadataValue.json([o.__dict__ for o in failed]),
        },
    )


def _partition_label(context) -> str:
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"
