"""Privacy: a user erased on request leaves no trace anywhere in the database (every row of every table
and view searched for the id), the rollups are recomputed without them where raw still holds their events
and keep their numbers under an anonymous id where it does not, and totals stay consistent; user ids can
be stored as keyed hashes from ingestion on."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.conftest import event_day, landed_events, landing_dir, query, run_hours

pytestmark = pytest.mark.db

START = datetime(2026, 6, 1, tzinfo=UTC)
DAY_TWO = START + timedelta(days=1)
ORG = "org_acme"


def traces(dsn: str, user_id: str) -> dict[str, int]:
    """Rows naming the user, whole rows read as text, in every table and view of the warehouse's schemas."""
    found = {}
    pattern = rf"(^|[^A-Za-z0-9_]){re.escape(user_id)}($|[^A-Za-z0-9_])"
    for schema, name in query(dsn, """select table_schema, table_name from information_schema.tables
                                      where table_schema not in ('pg_catalog', 'information_schema')"""):
        [(n,)] = query(dsn, f'select count(*) from "{schema}"."{name}" as t where t::text ~ %s', (pattern,))
        if n:
            found[f"{schema}.{name}"] = n
    return found


@pytest.fixture(scope="module")
def erased(server_dsn, dbt_manifest, tmp_path_factory):
    """Two days loaded, with a quarantined line of the victim; day one aged out of raw (as retention would
    do); then `warehouse erase` of org_acme's busiest user on day two."""
    from orchestration.cli import main
    from orchestration.database import sqlalchemy_url
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root, state = tmp_path_factory.mktemp("landing"), tmp_path_factory.mktemp("state")
    for name, value in {"WAREHOUSE_DSN": dsn, "WAREHOUSE_LANDING_DIR": str(root), "WAREHOUSE_STATE_DIR": str(state),
                        "DAGSTER_HOME": str(state / "dagster_home"),
                        "DAGSTER_PG_URL": sqlalchemy_url(fresh_database(server_dsn, TEST_DATABASE + "_dagster"))
                        }.items():
        mp.setenv(name, value)
    generate(root, START, 2, 1500, seed=8, defects=Defects(0, 0, 0, 0))
    events = landed_events(root)
    on_both_days = {e["user_id"] for e in events if event_day(e) == START.date()} & {
        e["user_id"] for e in events if event_day(e) == DAY_TWO.date()}
    victim = Counter(e["user_id"] for e in events if e["org_id"] == ORG and e["user_id"] in on_both_days
                     ).most_common(1)[0][0]
    # a line of the victim's that breaks the contract: quarantined, with their id in its raw text
    bad = dict(next(e for e in events if e["user_id"] == victim and event_day(e) == DAY_TWO.date()),
               event_id="bad-line-of-the-victim", latency_ms=-1)
    hour = datetime.fromisoformat(bad["event_time"]).astimezone(UTC)
    folder = root / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"
    with gzip.open(folder / "events-9999.jsonl.gz", "wt") as out:
        out.write(json.dumps(bad) + "\n")

    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    assert run_hours(START, START + timedelta(hours=47), instance).success
    assert materialize_reports(instance).success
    assert query(dsn, "select count(*) from raw.quarantine where raw_text like %s", (f"%{victim}%",)) == [(1,)]
    query(dsn, "delete from raw.usage_events where event_time < %s returning 1", (DAY_TWO,))  # day one aged out
    before = {
        "usage": dict(((d, o), (int(r), int(t))) for d, o, r, t in query(
            dsn, "select day_utc, org_id, sum(requests), sum(input_tokens) from marts.fct_usage_daily group by 1, 2")),
        "quarantined": query(dsn, "select count(*) from raw.quarantine")[0][0],
    }
    assert main(["erase", "--org", ORG, "--user", victim, "--reference", "DSR-1042"]) == 0
    yield dsn, events, victim, before
    mp.undo()


def test_no_trace_of_the_user_remains_anywhere(erased):
    dsn, events, victim, _ = erased
    assert traces(dsn, victim) == {}
    # the search has teeth: another user of the org is found in raw, staging and the marts
    other = next(e["user_id"] for e in events if e["org_id"] == ORG and e["user_id"] != victim
                 and event_day(e) == DAY_TWO.date())
    assert {"raw.usage_events", "staging.stg_usage__events", "marts.fct_cost_daily"} <= set(traces(dsn, other))


def test_rollups_are_recomputed_without_the_user_where_raw_holds_their_events(erased):
    dsn, events, victim, _ = erased
    kept = [e for e in events if event_day(e) == DAY_TWO.date() and e["user_id"] != victim]
    requests, users = Counter(e["org_id"] for e in kept), defaultdict(set)
    for e in kept:
        users[e["org_id"]].add(e["user_id"])
    day = DAY_TWO.date()
    assert dict(query(dsn, "select org_id, sum(requests)::bigint from marts.fct_usage_daily where day_utc = %s "
                           "group by 1", (day,))) == requests
    assert dict(query(dsn, "select org_id, sum(requests)::bigint from marts.fct_cost_daily where day_utc = %s "
                           "group by 1", (day,))) == requests
    assert dict(query(dsn, "select org_id, daily_active_users from marts.fct_active_users_daily where day_utc = %s",
                      (day,))) == {org: len(u) for org, u in users.items()}
    [(events_in_sessions,)] = query(dsn, """select coalesce(sum(events), 0) from marts.fct_sessions
                                            where org_id = %s and started_at >= %s""", (ORG, DAY_TWO))
    assert events_in_sessions == sum(1 for e in kept if e["org_id"] == ORG and e["session_id"])
    # schema build, where the next run starts from, agrees with what BI reads
    assert query(dsn, "select sum(requests) from build.fct_usage_daily") == query(
        dsn, "select sum(requests) from marts.fct_usage_daily")


def test_older_rollups_keep_their_numbers_under_an_anonymous_id(erased):
    dsn, events, victim, before = erased
    [(erasure_id, reference, raw_events, quarantined, rebuilt)] = query(
        dsn, "select erasure_id, reference, raw_events, quarantined_lines, rebuilt_at is not null from audit.erasures")
    assert (reference, quarantined, rebuilt) == ("DSR-1042", 1, True)
    assert raw_events == sum(1 for e in events if e["user_id"] == victim and event_day(e) == DAY_TWO.date())
    day = START.date()
    after = dict(((d, o), (int(r), int(t))) for d, o, r, t in query(
        dsn, """select day_utc, org_id, sum(requests), sum(input_tokens) from marts.fct_usage_daily
                where day_utc = %s group by 1, 2""", (day,)))
    assert after == {k: v for k, v in before["usage"].items() if k[0] == day}
    token = f"erased-{erasure_id}"
    [(requests,)] = query(dsn, "select sum(requests)::bigint from marts.fct_cost_daily where day_utc = %s "
                               "and user_id = %s", (day, token))
    assert requests == sum(1 for e in events if e["user_id"] == victim and event_day(e) == day)
    assert dict(query(dsn, "select org_id, sum(requests)::bigint from marts.fct_cost_daily where day_utc = %s "
                           "group by 1", (day,))) == {o: r for (d, o), (r, _) in after.items()}
    [(monthly,)] = query(dsn, "select count(*) from marts.fct_top_users_monthly where user_id = %s", (token,))
    assert monthly >= 1
    assert query(dsn, "select count(*) from raw.quarantine")[0][0] == before["quarantined"] - 1


def test_a_reference_naming_the_user_is_refused(erased, capsys):
    from orchestration.cli import main

    dsn, _, victim, _ = erased
    assert main(["erase", "--org", ORG, "--user", victim, "--reference", f"asked by {victim}"]) == 2
    assert "warehouse erase: the reference names the user" in capsys.readouterr().err
    assert main(["erase", "--org", ORG]) == 2
    assert "give --org and --user" in capsys.readouterr().err
    assert query(dsn, "select count(*) from audit.erasures") == [(1,)]


def test_user_ids_are_stored_as_keyed_hashes_and_erased_by_the_real_id(warehouse, monkeypatch):
    from ingestion.landing import load_hour
    from orchestration.database import connect
    from orchestration.privacy import erase

    key = "a-test-key-not-a-secret"
    monkeypatch.setenv("WAREHOUSE_PSEUDONYMISE_KEY", key)
    generate(landing_dir(), START, 1, 480, seed=3, defects=Defects(0, 0, 0, 0))
    events = landed_events(landing_dir())
    conn = connect(warehouse)
    try:
        for hour in range(3):
            load_hour(conn, landing_dir(), START + timedelta(hours=hour))
        loaded = [e for e in events if START <= datetime.fromisoformat(e["event_time"]) < START + timedelta(hours=3)]
        expected = {e["event_id"]: "p_" + hmac.new(key.encode(), e["user_id"].encode(),
                                                   hashlib.sha256).hexdigest()[:24] for e in loaded}
        stored = dict(query(warehouse, "select event_id, user_id from raw.usage_events"))
        assert stored and set(stored) <= set(expected)
        assert all(stored[i] == expected[i] for i in stored)
        victim = next(e for e in loaded if e["event_id"] in stored)
        assert traces(warehouse, victim["user_id"]) == {}  # the id as sent is nowhere

        done = erase(conn, victim["org_id"], victim["user_id"], "DSR-7", key)
        assert done.raw_events == sum(1 for e in loaded
                                      if e["user_id"] == victim["user_id"] and e["event_id"] in stored)
        assert done.raw_events > 0
        assert traces(warehouse, expected[victim["event_id"]]) == {}
        assert len(query(warehouse, "select distinct user_id from raw.usage_events")) == len(
            {e["user_id"] for e in loaded if e["event_id"] in stored}) - 1
    finally:
        conn.close()
