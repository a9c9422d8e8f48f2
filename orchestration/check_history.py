"""Every check result, Great Expectations suite or dbt test, is kept in audit.check_results: on-call and BI
can see what was checked, on which partition, what was observed, and why a run stopped."""

from __future__ import annotations

import json


def record_check(conn, *, check_name: str, asset_key: str, partition: str | None, success: bool,
                 severity: str, observed: dict, run_id: str | None, summary: str) -> None:
    """severity: 'error' (the check failed and blocked what is downstream), 'warn' (failed, recorded
    only) or 'none' (passed)."""
    with conn, conn.cursor() as cur:
        cur.execute("""insert into audit.check_results (check_name, asset_key, partition_key, success, severity,
                           observed, run_id, summary) values (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    (check_name, asset_key, partition, success, severity, json.dumps(observed, default=str),
                     run_id, summary))
