"""Write, audit, publish, on a real PostgreSQL with hand-made marts: what a publication copies, what a
restore puts back, and when a mart is replaced whole."""

from __future__ import annotations

import psycopg2
import pytest

from ingestion.schema import ensure_schema
from orchestration.publication import Mart, publish, restore
from tests.conftest import query

pytestmark = pytest.mark.db

HOURLY = Mart("hourly", ("hour_utc",))
REPORT = Mart("report", ())


def run(dsn: str, sql: str) -> None:
    """One transaction, like one dbt model build (now() is its start, so built_at tells runs apart)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def rebuild(dsn: str, hour: int, requests: int) -> None:
    """What an incremental model does for one hour: delete it, insert it again."""
    run(dsn, f"""delete from build.hourly where hour_utc = {hour};
                 insert into build.hourly values ({hour}, 'org_a', {requests}, now()),
                                                 ({hour}, 'org_b', {requests * 10}, now())""")


@pytest.fixture()
def dsn(warehouse):
    conn = psycopg2.connect(warehouse)
    with conn, conn.cursor() as cur:
        ensure_schema(cur)
        cur.execute("""create schema build;
                       create table build.hourly (hour_utc int, org_id text, requests int, built_at timestamptz);
                       create table build.report (org_id text, total int)""")
    conn.close()
    return warehouse


def with_conn(dsn, fn, *args):
    conn = psycopg2.connect(dsn)
    try:
        return fn(conn, *args)
    finally:
        conn.close()


def published(dsn: str) -> list[tuple]:
    return query(dsn, "select hour_utc, org_id, requests from marts.hourly order by 1, 2")


def built(dsn: str) -> list[tuple]:
    return query(dsn, "select hour_utc, org_id, requests from build.hourly order by 1, 2")


def test_a_publication_copies_the_hours_a_run_rebuilt_and_nothing_else(dsn):
    rebuild(dsn, 1, 5)
    rebuild(dsn, 2, 7)
    assert with_conn(dsn, publish, [HOURLY], "run-1") == {"hourly": 4}
    assert published(dsn) == [(1, "org_a", 5), (1, "org_b", 50), (2, "org_a", 7), (2, "org_b", 70)]

    rebuild(dsn, 2, 8)  # the next run rebuilds hour 2 only
    run(dsn, "update marts.hourly set requests = -1 where hour_utc = 1")  # a marker: hour 1 must not be recopied
    assert with_conn(dsn, publish, [HOURLY], "run-2") == {"hourly": 2}
    assert published(dsn) == [(1, "org_a", -1), (1, "org_b", -1), (2, "org_a", 8), (2, "org_b", 80)]
    assert query(dsn, "select run_id, copied from audit.publications order by publication_id") == [
        ("run-1", {"hourly": 4}), ("run-2", {"hourly": 2})]


def test_restore_puts_back_what_a_stopped_run_changed(dsn):
    rebuild(dsn, 1, 5)
    with_conn(dsn, publish, [HOURLY], "good run")
    rebuild(dsn, 1, 999)  # a run that failed its gates after dbt: a changed hour ...
    rebuild(dsn, 2, 999)  # ... and a new one, neither published
    assert published(dsn) == [(1, "org_a", 5), (1, "org_b", 50)]

    assert with_conn(dsn, restore, [HOURLY]) == {"hourly": 2}
    assert built(dsn) == published(dsn)  # schema build is back to what BI has
    assert with_conn(dsn, publish, [HOURLY], "next run") == {"hourly": 0}  # nothing of the stopped run leaks


def test_restore_before_any_publication_empties_what_was_never_published(dsn):
    rebuild(dsn, 1, 5)  # the very first run stopped at a gate
    with_conn(dsn, restore, [HOURLY])
    assert built(dsn) == []


def test_a_mart_rebuilt_whole_or_reshaped_is_replaced_whole(dsn):
    rebuild(dsn, 1, 5)
    rebuild(dsn, 2, 7)
    with_conn(dsn, publish, [HOURLY], "run-1")
    # a full refresh that no longer produces hour 2 (say, an org moved time zone)
    run(dsn, "truncate build.hourly")
    rebuild(dsn, 1, 6)
    with_conn(dsn, publish, [HOURLY], "full refresh")
    assert published(dsn) == [(1, "org_a", 6), (1, "org_b", 60)]

    run(dsn, "alter table build.hourly add column errors int default 0")  # the model gained a column
    rebuild(dsn, 3, 1)
    with_conn(dsn, publish, [HOURLY], "new column")
    assert query(dsn, "select hour_utc, errors from marts.hourly order by 1, org_id") == [
        (1, 0), (1, 0), (3, 0), (3, 0)]


def test_a_report_table_is_replaced_whole(dsn):
    run(dsn, "insert into build.report values ('org_a', 1), ('org_b', 2)")
    with_conn(dsn, publish, [REPORT], None)
    run(dsn, "truncate build.report; insert into build.report values ('org_a', 3)")
    with_conn(dsn, publish, [REPORT], None)
    assert query(dsn, "select * from marts.report") == [("org_a", 3)]
