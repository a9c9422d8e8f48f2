"""Who may read what: roles, grants and row-level security of the warehouse.

Four group roles (no login of their own; people and tools log in as members):
- warehouse_pipeline: the loader and the runs; reads and writes raw, audit, reference, staging, build, marts.
- warehouse_bi: BI tools; reads schema marts only, without the money (below), never raw, the quarantine
  or build.
- warehouse_finance: reads all of schema marts, the money included.
- warehouse_analyst: like warehouse_bi, limited by row-level security to the orgs of the analyst
  (access.analyst_orgs); marts without an org_id are not theirs to read.
The money: marts whose name says cost or spend, and columns whose name says usd or cost elsewhere.
The login roles come from settings (WAREHOUSE_BI_USER, ...: created when their password is set) and from
`warehouse access analyst NAME --org ORG`. Tables published later get the same treatment at each
publication (secure_marts), so a new or rebuilt mart is never readable by more than this says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg2 import sql

from orchestration.settings import Settings

PIPELINE, BI, FINANCE, ANALYST = "warehouse_pipeline", "warehouse_bi", "warehouse_finance", "warehouse_analyst"
GROUPS = (PIPELINE, BI, FINANCE, ANALYST)
PIPELINE_SCHEMAS = ("raw", "audit", "reference", "staging", "build", "marts", "dbt_test_failures", "access")
COST_TABLE = re.compile(r"cost|spend")
COST_COLUMN = re.compile(r"usd|cost")


@dataclass(frozen=True)
class Login:
    setting: str  # the settings that name it: <setting>_USER and <setting>_PASSWORD
    name: str
    password: str | None
    group: str


def logins(settings: Settings) -> list[Login]:
    return [Login("WAREHOUSE_PIPELINE", settings.pipeline_user, settings.pipeline_password, PIPELINE),
            Login("WAREHOUSE_BI", settings.bi_user, settings.bi_password, BI),
            Login("WAREHOUSE_FINANCE", settings.finance_user, settings.finance_password, FINANCE)]


class AccessError(RuntimeError):
    """Roles cannot be created or granted here; the message says what the warehouse's user lacks."""


def setup_access(conn, settings: Settings) -> list[str]:
    """Create the group roles, the logins whose password is set, the analysts' table and the grants; then
    secure every published mart. Returns a line per login role created or updated."""
    done = []
    with conn, conn.cursor() as cur:
        cur.execute("select rolsuper or rolcreaterole from pg_roles where rolname = current_user")
        if not cur.fetchone()[0]:
            raise AccessError("the warehouse's user (WAREHOUSE_DSN) may not create roles: give it CREATEROLE, or "
                              "run `warehouse access` with WAREHOUSE_DSN naming a user that may")
        cur.execute("select pg_advisory_xact_lock(hashtext('llm-usage-warehouse access'))")
        for group in GROUPS:
            _ensure_role(cur, group, login=False)
        cur.execute("select current_user")
        owner = cur.fetchone()[0]
        for schema in PIPELINE_SCHEMAS:
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("grant all on schema {s} to {r}; grant all on all tables in schema {s} to {r}; "
                                "grant all on all sequences in schema {s} to {r}; alter default privileges for role "
                                "{o} in schema {s} grant all on tables to {r}; alter default privileges for role {o} "
                                "in schema {s} grant all on sequences to {r}").format(
                s=sql.Identifier(schema), r=sql.Identifier(PIPELINE), o=sql.Identifier(owner)))
        cur.execute("""create table if not exists access.analyst_orgs (
                           role_name text not null, org_id text not null, primary key (role_name, org_id))""")
        # what row-level security asks of an analyst's rows: the orgs of the login running the query (the
        # function runs as its owner, so analysts need no access to the table; inside it current_user is
        # the owner, session_user the login)
        cur.execute("""create or replace function access.my_orgs() returns text[] language sql stable
                       security definer set search_path = pg_catalog as
                       $$ select coalesce(array_agg(org_id), '{}') from access.analyst_orgs
                          where role_name = session_user $$""")
        cur.execute(sql.SQL("revoke all on function access.my_orgs() from public; "
                            "grant usage on schema access to {a}; grant execute on function access.my_orgs() to {a}")
                    .format(a=sql.Identifier(ANALYST)))
        for login in logins(settings):
            if login.password:
                _ensure_role(cur, login.name, login=True, password=login.password, member_of=login.group)
                done.append(f"{login.name} (member of {login.group}; {login.setting}_USER)")
        secure_marts(cur)
    return done


def add_analyst(conn, name: str, orgs: list[str], password: str | None) -> None:
    """Create (or update) analyst login `name`, limited to `orgs`."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise AccessError(f"{name!r} is not a login name: use letters, digits and _ (at most 63, not a digit first)")
    with conn, conn.cursor() as cur:
        _ensure_role(cur, name, login=True, password=password, member_of=ANALYST)
        cur.execute("delete from access.analyst_orgs where role_name = %s", (name,))
        cur.execute("insert into access.analyst_orgs select %s, unnest(%s::text[])", (name, orgs))


def secure_marts(cur) -> None:
    """Grants and row-level security on the tables of schema marts that lack them (new, or rebuilt by a
    publication), by the rules of this module. A no-op until setup_access has run on this database (roles
    belong to the whole server, so the function it creates here is what tells)."""
    cur.execute("select to_regprocedure('access.my_orgs()') is not null")
    if not cur.fetchone()[0]:
        return
    readers = sql.SQL(", ").join(map(sql.Identifier, (BI, FINANCE, ANALYST)))
    cur.execute(sql.SQL("grant usage on schema marts to {}").format(readers))
    # a table the finance role cannot read has not been through here yet
    cur.execute("""select c.relname::text, array_agg(a.attname::text order by a.attnum)
                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                   where n.nspname = 'marts' and c.relkind in ('r', 'p')
                     and not has_table_privilege(%s, c.oid, 'select')
                   group by 1""", (FINANCE,))
    for table, columns in cur.fetchall():
        name = sql.Identifier("marts", table)
        cur.execute(sql.SQL("grant select on {} to {}").format(name, sql.Identifier(FINANCE)))
        plain = [c for c in columns if not COST_COLUMN.search(c)]
        if not COST_TABLE.search(table) and plain:
            shown = sql.SQL(", ").join(map(sql.Identifier, plain))
            cur.execute(sql.SQL("grant select ({}) on {} to {}").format(shown, name, sql.Identifier(BI)))
            if "org_id" in columns:
                cur.execute(sql.SQL("grant select ({}) on {} to {}").format(shown, name, sql.Identifier(ANALYST)))
        if "org_id" in columns:
            _row_level_security(cur, name)


def _row_level_security(cur, name: sql.Identifier) -> None:
    """Every org's rows for the pipeline (which writes them), BI and finance; an analyst's own orgs' only."""
    groups = {role: sql.Identifier(role) for role in GROUPS}
    cur.execute(sql.SQL("alter table {} enable row level security").format(name))
    cur.execute(sql.SQL("create policy pipeline_all on {} for all to {} using (true) with check (true)")
                .format(name, groups[PIPELINE]))
    cur.execute(sql.SQL("create policy readers_every_org on {} for select to {}, {} using (true)")
                .format(name, groups[BI], groups[FINANCE]))
    cur.execute(sql.SQL("create policy analysts_own_orgs on {} for select to {} using (org_id = any(access.my_orgs()))")
                .format(name, groups[ANALYST]))


def _ensure_role(cur, name: str, login: bool, password: str | None = None, member_of: str | None = None) -> None:
    cur.execute("select 1 from pg_roles where rolname = %s", (name,))
    verb = "alter" if cur.fetchone() else "create"
    cur.execute(sql.SQL("{} role {} {}").format(sql.SQL(verb), sql.Identifier(name),
                                                 sql.SQL("login" if login else "nologin")))
    if password is not None:
        cur.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(name), sql.Literal(password)))
    if member_of:
        cur.execute(sql.SQL("grant {} to {}").format(sql.Identifier(member_of), sql.Identifier(name)))
