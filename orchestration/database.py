"""Where the warehouse lives: WAREHOUSE_DSN, or an embedded PostgreSQL started on demand.

The embedded server (the `pgserver` package, PostgreSQL 16) keeps its data under
WAREHOUSE_STATE_DIR/pgdata, listens only on a Unix socket there, and is left running so every
command (the demo, `dagster dev`, the tests) reuses the same server.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from orchestration.settings import SettingError, Settings

WAREHOUSE_DATABASE = "warehouse"
DAGSTER_DATABASE = "dagster"


class WarehouseUnreachable(RuntimeError):
    """The warehouse server cannot be reached; the message says which setting to check."""


def embedded_server_uri(settings: Settings, database: str) -> str:
    """Start (or reuse) the embedded server and return a libpq URL for `database` on it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pgserver

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(settings.state_dir / "pgdata", cleanup_mode=None)
        return server.get_uri(database)


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


def redacted(dsn: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


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
    database = urlsplit(dsn).path.lstrip("/")
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
            if cur.fetchone() is None:
                cur.execute(f'create database "{database}"')
    finally:
        conn.close()


def recreate_database(server_dsn: str, name: str) -> str:
    """Drop and create database `name` on the server of `server_dsn` (tests, benchmarks); returns its URL."""
    admin = connect(with_database(server_dsn, "postgres"))
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
            cur.execute(f'create database "{name}"')
    finally:
        admin.close()
    return with_database(server_dsn, name)


def dbt_env(dsn: str) -> dict[str, str]:
    """Environment variables that dbt_project/profiles.yml reads to reach the same database."""
    params = psycopg2.extensions.parse_dsn(dsn)
    return {
        "DBT_PG_HOST": params.get("host", "localhost"),
        "DBT_PG_PORT": str(params.get("port", "5432")),
        "DBT_PG_USER": params.get("user", "postgres"),
        "DBT_PG_PASSWORD": params.get("password", ""),
        "DBT_PG_DBNAME": params.get("dbname", WAREHOUSE_DATABASE),
    }
