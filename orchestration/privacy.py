"""Erasure on request: one user of one org taken out of the warehouse.

In one transaction: the user's events are deleted from raw (staging, a view, follows), quarantined lines
naming the user are deleted, the rows of every user-grain mart (in build and in marts) are given an
anonymous id (`erased-<erasure_id>`), and values quoting the user in the audit tables (check samples,
alerts) are replaced by it. Then the caller rebuilds every mart over the event hours the user's events were
in (orchestration.runs.materialize_erasure), so those rollups are recomputed from what remains; rows older
than raw holds, which cannot be recomputed, keep their numbers under the anonymous id, so totals stay
consistent and nothing names the user. audit.erasures records each erasure with counts, never the user.

With WAREHOUSE_PSEUDONYMISE_KEY set, the warehouse holds the user's keyed hash: the id given is hashed
with the key and both are erased (rows loaded before the key was set hold the id itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from ingestion.pseudonyms import pseudonym

MARTS_SCHEMAS = ("build", "marts")
SESSIONS = "fct_sessions"  # keyed by session, not by time: the rebuild would leave a vanished session's row
_ID_CHARS = "A-Za-z0-9_.@:+-"  # an id's own characters: a match must not run on into a longer id


class ErasureError(ValueError):
    """The request cannot be carried out as given; the message says why and what to do."""


@dataclass
class Erasure:
    erasure_id: int
    org_id: str
    raw_events: int = 0
    quarantined_lines: int = 0
    mart_rows: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows anonymised or deleted
    audit_values: int = 0
    first_hour: datetime | None = None  # the event hours to rebuild, [first_hour, last_hour]
    last_hour: datetime | None = None

    @property
    def token(self) -> str:
        return f"erased-{self.erasure_id}"


def stored_ids(user_id: str, key: str | None) -> list[str]:
    """The ids the warehouse may hold for the user: the id itself, and its pseudonym under the key."""
    return [user_id, pseudonym(key, user_id)] if key else [user_id]


def id_pattern(ids: list[str]) -> str:
    """A PostgreSQL regular expression matching any of the ids as a whole token, group 2 the id."""
    alternatives = "|".join(re.sub(r"([\\^$.|?*+()\[\]{}-])", r"\\\1", i) for i in ids)
    return f"(^|[^{_ID_CHARS}])({alternatives})($|[^{_ID_CHARS}])"


def ensure_table(cur) -> None:
    cur.execute("create schema if not exists audit")
    cur.execute("""
        create table if not exists audit.erasures (
            erasure_id bigserial primary key,
            requested_at timestamptz not null default now(),
            reference text,  -- the request's ticket or case number: never the person
            org_id text not null,
            raw_events bigint not null default 0,
            quarantined_lines bigint not null default 0,
            mart_rows bigint not null default 0,
            audit_values bigint not null default 0,
            first_event_hour timestamptz,
            last_event_hour timestamptz,
            rebuilt_at timestamptz  -- null until the marts of those hours were rebuilt and published
        )""")


def erase(conn, org_id: str, user_id: str, reference: str = "", key: str | None = None) -> Erasure:
    """Take the user out of the database (see the module's docstring); returns what was done."""
    if not org_id or not user_id:
        raise ErasureError("give both the org (--org) and the user (--user) to erase")
    ids = stored_ids(user_id, key)
    if any(i in reference for i in ids):
        raise ErasureError("the reference names the user: give a ticket or case number instead (audit.erasures "
                           "keeps it, and must hold no personal data)")
    pattern = id_pattern(ids)
    with conn, conn.cursor() as cur:
        ensure_table(cur)
        cur.execute("insert into audit.erasures (reference, org_id) values (%s, %s) returning erasure_id",
                    (reference or None, org_id))
        done = Erasure(cur.fetchone()[0], org_id)
        if _exists(cur, "raw.usage_events"):
            cur.execute("""select min(date_trunc('hour', event_time, 'UTC')),
                                  max(date_trunc('hour', event_time, 'UTC')),
                                  (select min(event_time) from raw.usage_events)
                           from raw.usage_events where org_id = %s and user_id = any(%s)""", (org_id, ids))
            done.first_hour, done.last_hour, raw_from = cur.fetchone()
            cur.execute("delete from raw.usage_events where org_id = %s and user_id = any(%s)", (org_id, ids))
            done.raw_events = cur.rowcount
        else:
            raw_from = None
        if _exists(cur, "raw.quarantine"):
            cur.execute("delete from raw.quarantine where raw_text ~ %s", (pattern,))
            done.quarantined_lines = cur.rowcount
        for table, scoped in _user_grain_tables(cur):
            if table.endswith("." + SESSIONS) and raw_from is not None:
                # sessions raw still holds are rebuilt without the user's events: a session of only those
                # events would stay behind, so it goes now
                cur.execute(f"delete from {table} where org_id = %s and user_id = any(%s) and started_at >= %s",
                            (org_id, ids, raw_from))
                removed = cur.rowcount
            else:
                removed = 0
            if scoped:
                cur.execute(f"update {table} set user_id = %s where org_id = %s and user_id = any(%s)",
                            (done.token, org_id, ids))
            else:  # no org_id to scope it: another org's user of the same id is anonymised too (never deleted)
                cur.execute(f"update {table} set user_id = %s where user_id = any(%s)", (done.token, ids))
            if removed + cur.rowcount:
                done.mart_rows[table] = removed + cur.rowcount
        done.audit_values = _scrub_audit(cur, pattern, done.token)
        cur.execute("""update audit.erasures set raw_events = %s, quarantined_lines = %s, mart_rows = %s,
                              audit_values = %s, first_event_hour = %s, last_event_hour = %s,
                              rebuilt_at = case when %s is null then now() end
                       where erasure_id = %s""",
                    (done.raw_events, done.quarantined_lines, sum(done.mart_rows.values()), done.audit_values,
                     done.first_hour, done.last_hour, done.first_hour, done.erasure_id))
    return done


def pending_rebuild(conn, erasure_id: int) -> tuple[datetime, datetime] | None:
    """The event hours an erasure still has to rebuild (None: rebuilt, or nothing to rebuild)."""
    with conn, conn.cursor() as cur:
        ensure_table(cur)
        cur.execute("select first_event_hour, last_event_hour, rebuilt_at from audit.erasures where erasure_id = %s",
                    (erasure_id,))
        row = cur.fetchone()
    if row is None:
        raise ErasureError(f"no erasure {erasure_id} in audit.erasures")
    first, last, rebuilt = row
    return None if rebuilt or first is None else (first, last)


def mark_rebuilt(conn, erasure_id: int) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("update audit.erasures set rebuilt_at = now() where erasure_id = %s", (erasure_id,))


def _user_grain_tables(cur) -> list[tuple[str, bool]]:
    """Every table of build and marts with a user_id column, and whether an org_id column scopes it."""
    cur.execute("""select c.table_schema || '.' || c.table_name,
                          exists (select 1 from information_schema.columns as o where o.table_schema = c.table_schema
                                  and o.table_name = c.table_name and o.column_name = 'org_id')
                   from information_schema.columns as c
                   join information_schema.tables as t using (table_schema, table_name)
                   where c.table_schema = any(%s) and c.column_name = 'user_id' and t.table_type = 'BASE TABLE'
                   order by 1""", (list(MARTS_SCHEMAS),))
    return cur.fetchall()


def _scrub_audit(cur, pattern: str, token: str) -> int:
    """Replace the user's id wherever the audit tables quote it (check samples, alerts, deliveries)."""
    cur.execute("""select table_name, column_name, udt_name from information_schema.columns
                   where table_schema = 'audit' and table_name <> 'erasures'
                     and udt_name in ('text', 'jsonb', 'json', '_text')
                   order by 1, 2""")
    replaced = 0
    for table, column, kind in cur.fetchall():
        cast = "text[]" if kind == "_text" else kind
        cur.execute(f'update audit."{table}" set "{column}" = regexp_replace("{column}"::text, %s, %s, %s)::{cast} '
                    f'where "{column}"::text ~ %s', (pattern, rf"\1{token}\3", "g", pattern))
        replaced += cur.rowcount
    return replaced


def _exists(cur, table: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (table,))
    return cur.fetchone()[0]
