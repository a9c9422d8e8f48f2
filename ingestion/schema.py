"""DDL of the raw layer, written from the event contract so the two cannot drift apart."""

from __future__ import annotations

from ingestion.contract import FIELDS, LINEAGE_COLUMNS


def raw_events_ddl() -> str:
    columns = [f"{f.name} {f.sql_type}" + (" not null" if f.required or f.kind == "id" else "")
               for f in FIELDS]
    columns += [f"{name} {sql_type} not null" for name, sql_type in LINEAGE_COLUMNS]
    return ("create table if not exists raw.usage_events (\n    "
            + ",\n    ".join(columns)
            + ",\n    primary key (event_id)\n)")


SCHEMA_SQL = f"""
create schema if not exists raw;
create schema if not exists audit;

{raw_events_ddl()};
-- rollups recompute whole hours, found through the landing hour and then the event hour
create index if not exists usage_events_landing_hour on raw.usage_events (landing_hour);
create index if not exists usage_events_event_time on raw.usage_events (event_time);

-- one row per file load attempt; read = loaded + duplicate + quarantined for every batch
create table if not exists raw.ingestion_batches (
    batch_id bigserial primary key,
    source text not null,
    file text not null,
    checksum text not null,
    landing_hour timestamptz not null,
    rows_read bigint not null default 0,
    rows_loaded bigint not null default 0,
    rows_duplicate bigint not null default 0,
    rows_quarantined bigint not null default 0,
    rows_conflicting bigint not null default 0,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null,
    error text,
    constraint counts_add_up check (rows_read = rows_loaded + rows_duplicate + rows_quarantined)
);
create index if not exists ingestion_batches_file on raw.ingestion_batches (file, checksum);

-- rows that failed the contract, with the reason codes and the text as it arrived
create table if not exists raw.quarantine (
    quarantine_id bigserial primary key,
    batch_id bigint not null references raw.ingestion_batches (batch_id) deferrable initially deferred,
    source text not null,
    file text not null,
    line_number bigint not null,
    raw_text text not null,
    reasons text[] not null,
    quarantined_at timestamptz not null default now()
);

-- gate status of each landing hour: staging only reads hours whose quality suite passed
create table if not exists raw.landing_hours (
    landing_hour timestamptz primary key,
    gate_status text not null check (gate_status in ('pending', 'passed', 'failed')),
    checked_at timestamptz,
    run_id text
);

-- history of every quality check result, for on-call and BI
create table if not exists audit.check_results (
    result_id bigserial primary key,
    check_name text not null,
    asset_key text not null,
    partition_key text,
    success boolean not null,
    severity text not null,
    observed jsonb not null,
    run_id text,
    checked_at timestamptz not null default now()
);
"""


def ensure_schema(cur) -> None:
    """Create the raw and audit layers if missing (idempotent)."""
    cur.execute("select pg_advisory_xact_lock(hashtext('llm-usage-warehouse schema'))")
    cur.execute(SCHEMA_SQL)
