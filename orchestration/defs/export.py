"""Incident export from the UI: the same CSV as `warehouse export incidents`, with the run's config."""

import dagster as dg

from orchestration.resources import WarehouseResource


class IncidentExportConfig(dg.Config):
    org: str
    start: str  # UTC day or time, e.g. 2026-11-30 or 2026-11-30T14:00
    end: str  # excluded
    limit: int = 100_000


@dg.op(description="Write a CSV of the org's failed requests and anomalies in [start, end) to "
                   "WAREHOUSE_STATE_DIR/exports (bound parameters, a row cap).")
def export_incidents_csv(context: dg.OpExecutionContext, config: IncidentExportConfig,
                         warehouse: WarehouseResource) -> dg.Output:
    from orchestration.export import ExportError, export_incidents, parse_time

    conn = warehouse.connect()
    try:
        done = export_incidents(conn, config.org, parse_time(config.start, "start"), parse_time(config.end, "end"),
                                warehouse.settings.state_dir / "exports", config.limit)
    except ExportError as exc:
        raise dg.Failure(description=str(exc)) from None
    finally:
        conn.close()
    if done.truncated:
        context.log.warning(f"capped at {config.limit:,} rows: more matched, narrow the range")
    return dg.Output(str(done.path), metadata={"path": dg.MetadataValue.path(str(done.path)),
                                               "rows": done.rows, "truncated": done.truncated})


@dg.job(description="Export an org's failed requests and anomalies over a time range as CSV (set org, start, "
                    "end in the launchpad's config).")
def incident_export_job():
    export_incidents_csv()
