"""Where data leaves for BI: write, audit, publish.

dbt builds every mart in schema `build` (write); the dbt tests and the Great Expectations suites check
it there (audit); only when every gate of the run has passed does `publish` copy the rows the run
rebuilt into schema `marts`, which BI reads, in one transaction (publish). A failed gate skips the
publication, so `marts` keeps the last good data, whole. Before the next dbt run, `restore` puts back
into `build` what a failed run changed, so nothing unchecked feeds a later run's rollups.

Rows are found by the `built_at` column every mart carries: a row built after the last publication
belongs to the current run, so one run at a time goes from its dbt step to its publication: it holds
the build lease (audit.build_lease) in between. The daemon's queue already runs one dbt job at a time
(DBT_RUN_TAGS); the lease keeps it so for runs started by hand side by side, which would otherwise put
back or publish each other's rows (and collide on dbt's failure views). An incremental mart is copied
key by key (its dbt unique_key: every row of an hour or a day is rebuilt together); a table rebuilt
whole (the reports) is replaced whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestion.lifeline import process_gone
from orchestration.access import secure_marts

BUILD_SCHEMA = "build"
PUBLISHED_SCHEMA = "marts"


@dataclass(frozen=True)
class Mart:
    name: str
    keys: tuple[str, ...]  # dbt unique_key of an incremental mart; empty for a table rebuilt whole

    @property
    def incremental(self) -> bool:
        return bool(self.keys)


@dataclass(frozen=True)
class Holder:
    """A run and the process that runs it (the one that started the run: steps may have their own)."""
    run_id: str
    host: str
    pid: int
    pid_started_at: float

    @classmethod
    def this_run(cls, run_id: str) -> Holder:
        import multiprocessing
        import os
        import socket

        import psutil

        parent = multiprocessing.parent_process()  # a step of the multiprocess executor: its run's process
        pid = parent.pid if parent is not None and parent.pid else os.getpid()
        return cls(run_id, socket.gethostname(), pid, psutil.Process(pid).create_time())


def acquire_build(conn, me: Holder, run_finished: Callable[[str], bool | None],
                  waiting: Callable[[str], None], poll_seconds: float = 2.0) -> None:
    """Wait until schema build is free, then hold it for run `me`. It is free when no run holds it, when
    the holder's run has finished (run_finished(run_id) is True; None: unknown here), or when the holder's
    process is gone or is this very process (runs in one process follow each other). `waiting` is told
    why, every half minute."""
    import time

    waited = 0.0
    while True:
        with conn, conn.cursor() as cur:
            cur.execute("insert into audit.build_lease (only_row) values (true) on conflict do nothing")
            cur.execute("select run_id, host, pid, pid_started_at from audit.build_lease for update")
            run_id, host, pid, started = cur.fetchone()
            if run_id is None or run_id == me.run_id or run_finished(run_id) or (
                    host == me.host and (process_gone(pid, started) or (pid, started) == (me.pid, me.pid_started_at))):
                cur.execute("""update audit.build_lease set run_id = %s, host = %s, pid = %s, pid_started_at = %s,
                                   acquired_at = now()""", (me.run_id, me.host, me.pid, me.pid_started_at))
                return
        if waited % 30 < poll_seconds:
            waiting(f"run {run_id} (pid {pid} on {host}) is between its dbt step and its publication; waiting for "
                    f"it to publish or end ({waited:.0f} s so far)")
        time.sleep(poll_seconds)
        waited += poll_seconds


def release_build(conn, run_id: str) -> None:
    """Free schema build after run `run_id` published (a run that stops earlier keeps it until it ends)."""
    with conn, conn.cursor() as cur:
        cur.execute("update audit.build_lease set run_id = null, host = null, pid = null, pid_started_at = null "
                    "where run_id = %s", (run_id,))


def marts_in_manifest(manifest_path: Path, tag: str | None = None) -> list[Mart]:
    """The dbt models built in schema build (optionally only those with `tag`), in name order."""
    manifest = json.loads(Path(manifest_path).read_text())
    marts = []
    for node in manifest["nodes"].values():
        config = node.get("config", {})
        if node["resource_type"] != "model" or node["schema"] != BUILD_SCHEMA:
            continue
        if tag is not None and tag not in node.get("tags", []):
            continue
        key = config.get("unique_key") if config.get("materialized") == "incremental" else None
        keys = tuple([key] if isinstance(key, str) else key or [])
        marts.append(Mart(node["alias"] or node["name"], keys))
    return sorted(marts, key=lambda m: m.name)


def last_publication(cur) -> object:
    cur.execute("select coalesce(max(published_at), '-infinity') from audit.publications")
    return cur.fetchone()[0]


def publish(conn, marts: list[Mart], run_id: str | None) -> dict[str, int]:
    """Copy what was built since the last publication into schema marts, all marts in one transaction.
    Returns the rows copied per mart."""
    copied = {}
    with conn, conn.cursor() as cur:
        cur.execute("lock table audit.publications in share row exclusive mode")  # one publication at a time
        cur.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
        cur.execute("select clock_timestamp()")
        now = cur.fetchone()[0]
        since = last_publication(cur)
        for mart in marts:
            if not _exists(cur, BUILD_SCHEMA, mart.name):
                continue
            copied[mart.name] = _copy(cur, mart, BUILD_SCHEMA, PUBLISHED_SCHEMA, since)
            _copy_comments(cur, mart.name)
        cur.execute("insert into audit.publications (published_at, run_id, copied) values (%s, %s, %s)",
                    (now, run_id, json.dumps(copied)))
        secure_marts(cur)  # a mart created or rebuilt here gets its grants and row-level security in the same step
    return copied


def restore(conn, marts: list[Mart]) -> dict[str, int]:
    """Undo in schema build what runs changed since the last publication (a run stopped by a gate),
    by copying those keys back from schema marts. Returns the keys' rows put back per mart."""
    restored = {}
    with conn, conn.cursor() as cur:
        cur.execute("lock table audit.publications in share row exclusive mode")
        since = last_publication(cur)
        for mart in marts:
            if mart.incremental and _exists(cur, BUILD_SCHEMA, mart.name):
                rows = _copy(cur, mart, PUBLISHED_SCHEMA, BUILD_SCHEMA, since)
                if rows:
                    restored[mart.name] = rows
        if _exists(cur, "audit", "cost_restatements"):  # a stopped restatement changed nothing BI sees
            cur.execute("delete from audit.cost_restatements where restated_at > %s", (since,))
    return restored


def _copy(cur, mart: Mart, source: str, target: str, since) -> int:
    """Make target.<mart> equal source.<mart> for the keys of the rows built in schema build after
    `since`: build -> marts publishes, marts -> build restores. A mart without keys, a new one, one
    whose columns changed or one rebuilt whole is copied whole. Returns the rows written."""
    publishing = source == BUILD_SCHEMA
    src, dst, changed_in = f"{source}.{mart.name}", f"{target}.{mart.name}", f"{BUILD_SCHEMA}.{mart.name}"
    whole = not mart.incremental
    if not publishing and not _exists(cur, source, mart.name):
        # restoring a mart never published: a stopped run's rows have nothing to go back to
        cur.execute(f"delete from {dst} where built_at > %s", (since,))
        return cur.rowcount
    if not _exists(cur, target, mart.name):
        cur.execute(f"create table {dst} (like {src} including all)")
        whole = True
    elif _columns(cur, source, mart.name) != _columns(cur, target, mart.name):
        if not publishing:
            return 0  # the model changed shape; the next publication replaces the mart whole
        cur.execute(f"drop table {dst}")
        cur.execute(f"create table {dst} (like {src} including all)")
        whole = True
    if whole or (publishing and _rebuilt_whole(cur, src, since)):
        cur.execute(f"delete from {dst}")
        cur.execute(f"insert into {dst} select * from {src}")
        return cur.rowcount
    keys = ", ".join(mart.keys)
    cur.execute("drop table if exists pg_temp.changed_keys")
    cur.execute(f"create temp table changed_keys on commit drop as "
                f"select distinct {keys} from {changed_in} where built_at > %s", (since,))
    # without statistics the planner guessed 2,260 keys and sorted all 10M event costs to delete an hour's
    # (4.4 s); analyzed, it probes the index (5 ms)
    cur.execute("analyze changed_keys")
    match = " and ".join(f"t.{k} = c.{k}" for k in mart.keys)
    cur.execute(f"delete from {dst} as t using changed_keys as c where {match}")
    cur.execute(f"insert into {dst} select t.* from {src} as t join changed_keys as c on {match}")
    return cur.rowcount


def _copy_comments(cur, name: str) -> None:
    """The table's and its columns' comments (dbt persist_docs writes them in build), where BI reads."""
    from psycopg2 import sql

    target = sql.Identifier(PUBLISHED_SCHEMA, name)
    cur.execute("""select a.attname, col_description(b.oid, a.attnum), col_description(m.oid, a.attnum),
                          obj_description(b.oid, 'pg_class'), obj_description(m.oid, 'pg_class')
                   from pg_class as b join pg_class as m on m.relname = b.relname
                   join pg_attribute as a on a.attrelid = b.oid and a.attnum > 0 and not a.attisdropped
                   where b.oid = %s::regclass and m.oid = %s::regclass""",
                (f"{BUILD_SCHEMA}.{name}", f"{PUBLISHED_SCHEMA}.{name}"))
    rows = cur.fetchall()
    if rows and rows[0][3] != rows[0][4]:
        cur.execute(sql.SQL("comment on table {} is %s").format(target), (rows[0][3],))
    for column, wanted, has, *_ in rows:
        if wanted != has:
            cur.execute(sql.SQL("comment on column {}.{} is %s").format(target, sql.Identifier(column)), (wanted,))


def _rebuilt_whole(cur, table: str, since) -> bool:
    """Every row built since the last publication: a full refresh, after which keys may have gone."""
    cur.execute(f"select min(built_at) > %s from {table}", (since,))
    return bool(cur.fetchone()[0])


def _exists(cur, schema: str, table: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (f"{schema}.{table}",))
    return cur.fetchone()[0]


def _columns(cur, schema: str, table: str) -> list[tuple[str, str]]:
    cur.execute("""select column_name, data_type from information_schema.columns
                   where table_schema = %s and table_name = %s order by ordinal_position""", (schema, table))
    return cur.fetchall()
