"""DDL of the raw layer, written from the event contract so the two cannot drift apart."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from ingestion.contract import FIELDS, LINEAGE_COLUMNS


def raw_events_ddl() -> str:
    columns = [f"{f.name} {f.sql_type}" + (" not null" if f.required or f.kind == "id" else "")
               for f in FIELDS]
    columns += [f"{name} {sql_type} not null" for name, sql_type in LINEAGE_COLUMNS]
    return ("create table if not exists raw.usage_events (\n    "
            + ",\n    ".join(columns)
            + "\n) partition by range (event_time)")


def day_partition(day: date) -> str:
    """Name of the raw.usage_events partition holding the events of one UTC day."""
    return f"raw.usage_events_p{day:%Y%m%d}"


def create_day_partition_sql(day: date) -> str:
    """A new table attached as the day's partition. Attaching locks the parent only against other
    attaches, where `create table ... partition of` would lock out every load and every reader of
    raw.usage_events until the creating batch commits."""
    name, end = day_partition(day), day + timedelta(days=1)
    return (f"create table {name} (like raw.usage_events including defaults including constraints);"
            f" alter table raw.usage_events attach partition {name}"
            f" for values from ('{day.isoformat()} 00:00+00') to ('{end.isoformat()} 00:00+00')")


def ensure_day_partition(cur, day: date) -> None:
    """Create the day's partition of raw.usage_events unless it exists. Loaders running side by side
    take turns here (an advisory lock held until their commit), so a day is created once."""
    cur.execute("select pg_advisory_xact_lock(hashtext('llm-usage-warehouse day partitions'))")
    cur.execute("select to_regclass(%s)", (day_partition(day),))
    if cur.fetchone()[0] is None:
        cur.execute(create_day_partition_sql(day))


def day_partitions(cur) -> dict[date, str]:
    """The day partitions of raw.usage_events that exist, by UTC day."""
    cur.execute("""select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
                   where i.inhparent = 'raw.usage_events'::regclass""")
    found = {}
    for (name,) in cur.fetchall():
        if match := re.fullmatch(r"usage_events_p(\d{8})", name):
            found[datetime.strptime(match[1], "%Y%m%d").date()] = f"raw.{name}"
    return found


SCHEMA_SQL = f"""
create schema if not exists raw;
create schema if not exists audit;

-- one partition per UTC day of event time (created by the loader as days arrive), so retention
-- drops a partition instead of deleting rows; rows arrive roughly in time order, so a block-range
-- (BRIN) index finds an event hour for the rollups at almost no load cost
{raw_events_ddl()};
create index if not exists usage_events_event_time on raw.usage_events using brin (event_time);
-- a landing hour's rows may sit in any day partition (late events), and a run looks them up in every one
-- (its gates, dbt's window): a B-tree answers in under a millisecond, where a BRIN index read every
-- partition's block ranges (230 ms a lookup on 300k events, about 40 lookups a run; bench/RESULTS.md)
drop index if exists raw.usage_events_landing_hour;  -- the BRIN index of earlier versions
create index if not exists usage_events_by_landing_hour on raw.usage_events (landing_hour);

-- the registry that makes ingestion exactly-once: a partitioned table cannot hold a unique key
-- without its partition column, so every event id is registered here (first occurrence wins)
create table if not exists raw.event_ids (
    event_id text collate "C" primary key,  -- byte order: the key is compared, never sorted for people
    content_hash text not null,  -- SHA-1 of the source row, to tell a true duplicate from a conflict
    batch_id bigint not null  -- the batch that loaded it; retention forgets ids by its landing hour
);

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
-- a file delivered again with other content replaces its earlier batch, which stays as 'superseded'
alter table raw.ingestion_batches add column if not exists superseded_by bigint;
-- an operator accepted this file's share of quarantined rows (warehouse release; audit.releases says who)
alter table raw.ingestion_batches add column if not exists share_accepted boolean not null default false;

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
-- a row released from raw by an operator (warehouse release) has no line number: it is shown as stored
alter table raw.quarantine alter column line_number drop not null;

-- event hours whose events a superseded file took away: the next dbt run of the landing hour recomputes
-- them too, though no event of the hour lands in them any more
create table if not exists raw.retracted_event_hours (
    landing_hour timestamptz not null,
    event_hour timestamptz not null,
    primary key (landing_hour, event_hour)
);

-- how far each application-database source has been read (its watermark column's newest value)
create table if not exists raw.extract_watermarks (
    source text primary key,
    watermark timestamptz not null,
    updated_at timestamptz not null
);

-- gate status of each landing hour: staging only reads hours whose quality suite passed
create table if not exists raw.landing_hours (
    landing_hour timestamptz primary key,
    gate_status text not null check (gate_status in ('pending', 'passed', 'failed')),
    checked_at timestamptz,
    run_id text
);

-- each release of a failed hour (warehouse release): rows moved from raw to the quarantine, files whose
-- quarantined share was accepted, by whom and why; no row content is kept here
create table if not exists audit.releases (
    release_id bigserial primary key,
    landing_hour timestamptz not null,
    released_at timestamptz not null default now(),
    released_by text not null,
    note text,
    rows_released bigint not null,
    reasons jsonb not null,  -- reason -> rows
    files_accepted text[] not null
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
    checked_at timestamptz not null default now(),
    summary text  -- what failed, on which values, and what to do
);

-- alerts (orchestration/alerting): one row per alert, opened when its condition appears, resolved when it
-- goes; at most one open per kind and key, so a condition seen on every sensor tick pages once
create table if not exists audit.alerts (
    alert_id bigserial primary key,
    kind text not null,
    alert_key text not null,
    severity text not null,
    summary text not null,
    details jsonb not null,  -- subject, values against their limits, link, runbook
    started_at timestamptz not null,
    last_seen_at timestamptz not null,
    resolved_at timestamptz
);
create unique index if not exists alerts_one_open on audit.alerts (kind, alert_key) where resolved_at is null;

-- each message of an alert (firing, resolved) to each routed channel, retried until the channel takes it
create table if not exists audit.alert_deliveries (
    delivery_id bigserial primary key,
    alert_id bigint not null references audit.alerts (alert_id),
    state text not null check (state in ('firing', 'resolved')),
    channel text not null,
    payload jsonb not null,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    delivered_at timestamptz,
    last_error text
);

-- which run has schema build to itself, from its dbt step to its publication (orchestration/publication.py):
-- one row, free when run_id is null; the process is the run's own, to tell a dead holder from a busy one
create table if not exists audit.build_lease (
    only_row boolean primary key default true check (only_row),
    run_id text,
    host text,
    pid integer,
    pid_started_at double precision,  -- seconds since the epoch: a reused pid is a younger process
    acquired_at timestamptz
);

-- each publication of the marts BI reads (schema marts) from what dbt built (schema build)
create table if not exists audit.publications (
    publication_id bigserial primary key,
    published_at timestamptz not null,  -- every row built before this instant has been published
    run_id text,
    copied jsonb not null  -- rows copied per mart
);
"""


# every relation SCHEMA_SQL creates, schema-qualified (an index lives in its table's schema)
SCHEMA_RELATIONS = tuple(
    [m[1] for m in re.finditer(r"create table if not exists (\w+\.\w+)", SCHEMA_SQL)]
    + [f"{m[2]}.{m[1]}" for m in re.finditer(r"create index if not exists (\w+) on (\w+)\.", SCHEMA_SQL)])


def ensure_schema(cur) -> None:
    """Create the raw and audit layers if missing (idempotent).

    The DDL runs only when something is missing: even `create index if not exists` on a partitioned
    table takes a share lock on every partition first, and waits behind autovacuum (seen here:
    11 % of a load spent waiting)."""
    cur.execute("select count(to_regclass(name)) from unnest(%s::text[]) as name", (list(SCHEMA_RELATIONS),))
    if cur.fetchone()[0] == len(SCHEMA_RELATIONS):
        return
    cur.execute("select pg_advisory_xact_lock(hashtext('llm-usage-warehouse schema'))")
    cur.execute(SCHEMA_SQL)
