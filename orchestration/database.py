"""Where the warehouse lives: WAREHOUSE_DSN, or an embedded PostgreSQL started on demand.

The embedded server (the `pgserver` package, PostgreSQL 16) keeps its data under
WAREHOUSE_STATE_DIR/pgdata, listens only on a Unix socket there, and is left running so every
command (the demo, `dagster dev`, the tests) reuses the same server.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from orchestration.settings import SettingError, Settings, dbt_pg_options

WAREHOUSE_DATABASE = "warehouse"
DAGSTER_DATABASE = "dagster"


class WarehouseUnreachable(RuntimeError):
    """The warehouse server cannot be reached; the message says which setting to check."""


RECOVERY_WAIT_SECONDS = 900  # how long a command waits for the embedded server to finish crash recovery


def embedded_server_uri(settings: Settings, database: str) -> str:
    """Start (or reuse) the embedded server and return a libpq URL for `database` on it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pgserver

        # it logs the whole server log when a start times out; what happens is said below, in one line
        logging.getLogger("pgserver").setLevel(logging.CRITICAL)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        pgdata = (settings.state_dir / "pgdata").resolve()
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except subprocess.TimeoutExpired:  # pg_ctl waits 10 s; replaying the WAL after a crash takes longer
            server = _after_recovery(pgdata)
        except subprocess.CalledProcessError:
            raise WarehouseUnreachable(f"the embedded PostgreSQL under {pgdata} failed to start; read its log "
                                       f"{pgdata / 'log'}, or set WAREHOUSE_DSN to use another server") from None
        return server.get_uri(database)


def forget_embedded_handle(pgdata: Path) -> None:
    """Drop pgserver's handle of the server in `pgdata` (with its exit hook), so the next call starts afresh."""
    import atexit

    from pgserver.postgres_server import PostgresServer

    handle = PostgresServer._instances.pop(pgdata, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


def _after_recovery(pgdata: Path):
    """Wait for an embedded server that is still starting (crash recovery) to accept connections."""
    import pgserver
    from pgserver.utils import PostmasterInfo

    forget_embedded_handle(pgdata)  # the handle whose start timed out is unusable
    print(f"[warehouse] the embedded PostgreSQL under {pgdata} did not stop cleanly and is recovering (replaying "
          f"its write-ahead log, see {pgdata / 'log'}); waiting for it, up to {RECOVERY_WAIT_SECONDS // 60} minutes",
          file=sys.stderr, flush=True)
    deadline = time.monotonic() + RECOVERY_WAIT_SECONDS
    while True:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running() and info.status == "ready":
            print("[warehouse] the embedded PostgreSQL has recovered", file=sys.stderr, flush=True)
            return pgserver.get_server(pgdata, cleanup_mode=None)
        if info is None or not info.is_running():
            raise WarehouseUnreachable(f"the embedded PostgreSQL under {pgdata} stopped while recovering; read its "
                                       f"log {pgdata / 'log'}")
        if time.monotonic() > deadline:
            raise WarehouseUnreachable(f"the embedded PostgreSQL under {pgdata} is still recovering after "
                                       f"{RECOVERY_WAIT_SECONDS} s; run the command again later (its log: "
                                       f"{pgdata / 'log'})")
        time.sleep(1)


def warehouse_dsn(settings: Settings | None = None) -> str:
    """The libpq URL of the warehouse database, creating it on the embedded server if needed."""
    settings = settings or Settings.from_env()
    dsn = settings.dsn or embedded_server_uri(settings, WAREHOUSE_DATABASE)
    ensure_database(dsn)
    return dsn


def dagster_storage_url(settings: Settings | None = None) -> str:
    """SQLAlchemy URL of Dagster's storage: DAGSTER_PG_URL, else database `dagster` on the same server."""
    settings = settings or Settings.from_env()
    if settings.dagster_pg_url:
        return settings.dagster_pg_url
    dsn = with_database(warehouse_dsn(settings), DAGSTER_DATABASE)
    ensure_database(dsn, setting="DAGSTER_PG_URL")
    return sqlalchemy_url(dsn)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def sqlalchemy_url(dsn: str) -> str:
    """The same URL with an explicit psycopg2 driver (SQLAlchemy 2.1 would otherwise pick psycopg 3)."""
    scheme, rest = dsn.split("://", 1)
    return "postgresql+psycopg2://" + rest


SECRET_PARAMETERS = ("password", "sslpassword")  # libpq URL parameters that hold a secret


def redacted(dsn: str) -> str:
    """The URL without its password (in the user part or as ?password=...), for messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    if parts.query:
        query = [(k, "***" if k.lower() in SECRET_PARAMETERS else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(query, safe="*/"))
    return urlunsplit(parts)


def database_name(dsn: str) -> str:
    """The database a libpq URL names, decoded as libpq decodes it (%20, ?dbname=...)."""
    return psycopg2.extensions.parse_dsn(dsn).get("dbname", "")


def connect(dsn: str, setting: str = "WAREHOUSE_DSN") -> psycopg2.extensions.connection:
    """A psycopg2 connection, or one clear line naming the setting to fix."""
    try:
        return psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseUnreachable(
            f"cannot connect to the warehouse at {setting}={redacted(dsn)} ({reason}); "
            f"start that server, fix {setting}, or unset it to use the embedded PostgreSQL"
        ) from None


@contextlib.contextmanager
def cursor(dsn: str) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in one transaction: committed on success, rolled back on error."""
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def ensure_database(dsn: str, setting: str = "WAREHOUSE_DSN") -> None:
    """Create the URL's database if it does not exist (needs CREATEDB on that server)."""
    database = database_name(dsn)
    if not database:
        raise SettingError(f"{setting}={redacted(dsn)} names no database; add one, e.g. .../warehouse")
    try:
        psycopg2.connect(dsn, connect_timeout=10).close()
        return
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            connect(dsn, setting)  # re-raise as one clear line
    conn = connect(with_database(dsn, "postgres"), setting)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (database,))
            if cur.fetchone() is None:  # the name as an identifier: whatever it holds, it is only a name
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    finally:
        conn.close()


def recreate_database(server_dsn: str, name: str) -> str:
    """Drop and create database `name` on the server of `server_dsn` (tests, benchmarks); returns its URL."""
    _on_server(server_dsn, "drop database if exists {} with (force)", "create database {}", name=name)
    return with_database(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    """Drop database `name` on the server of `server_dsn`, if it is there (a benchmark's scratch database)."""
    _on_server(server_dsn, "drop database if exists {} with (force)", name=name)


def _on_server(server_dsn: str, *statements: str, name: str) -> None:
    """Statements about database `name`, run from the server's postgres database outside a transaction."""
    admin = connect(with_database(server_dsn, "postgres"))
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            for statement in statements:
                cur.execute(sql.SQL(statement).format(sql.Identifier(name)))
    finally:
        admin.close()


def dbt_env(dsn: str) -> dict[str, str]:
    """Environment variables that dbt_project/profiles.yml reads to reach the same database, and the
    session settings its connections start with (WAREHOUSE_DBT_PG_OPTIONS, read by libpq)."""
    params = psycopg2.extensions.parse_dsn(dsn)
    return {
        "PGOPTIONS": dbt_pg_options(),
        "DBT_PG_HOST": params.get("host", "localhost"),
        "DBT_PG_PORT": str(params.get("port", "5432")),
        "DBT_PG_USER": params.get("user", "postgres"),
        "DBT_PG_PASSWORD": params.get("password", ""),
        "DBT_PG_DBNAME": params.get("dbname", WAREHOUSE_DATABASE),
    }
