"""Behaviour marts on a real PostgreSQL, against the same numbers computed here from the landing files:
sessions, daily / weekly / monthly active users with week-over-week growth, and weekly cohorts."""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate, landing_path
from tests.conftest import query, run_hours

pytestmark = [pytest.mark.db, pytest.mark.one_server]  # CI: the embedded server only (see .ci/run)

START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
DAYS = 21


@pytest.fixture(scope="module")
def loaded(server_dsn, dbt_manifest, tmp_path_factory):
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    generate(root, START, DAYS, 900, seed=8, defects=Defects(0, 0, 0, 0))  # every line one valid event
    last_day = START + timedelta(days=DAYS - 1)
    write_midnight_session(root, last_day)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success  # prices, for the sessions' and variants' costs
    # two runs: the second, of the last day, takes the incremental path of every model
    assert run_hours(START, last_day - timedelta(hours=1), instance).success
    assert run_hours(last_day, last_day + timedelta(hours=23), instance).success
    assert materialize_reports(instance).success
    events = [json.loads(line) for path in sorted(root.rglob("*.jsonl.gz"))
              for line in gzip.open(path, "rt").read().splitlines()]
    yield dsn, events, root, instance
    mp.undo()


def percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def write_midnight_session(root, midnight: datetime) -> None:
    """A session through the whole funnel that starts before midnight: its later steps land in the next
    day's run, which must recompute the day the session started."""
    first = sorted(root.rglob("*.jsonl.gz"))[0]
    template = {k: v for k, v in json.loads(gzip.open(first, "rt").readline()).items() if k != "received_at"}
    steps = [(-10, "read_file", "read"), (10, "run_tests", "run"), (20, "edit_file", "suggest_fix")]
    for i, (minutes, tool, action) in enumerate(steps):
        time = midnight + timedelta(minutes=minutes)
        event = {**template, "event_id": f"midnight-{i}", "session_id": "midnight-session",
                 "event_time": time.isoformat(), "tool": tool, "action": action}
        with gzip.open(landing_path(root, time).with_name("midnight.jsonl.gz"), "at") as f:
            f.write(json.dumps(event) + "\n")


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["event_time"]).astimezone(UTC)


def test_sessions_match_the_files(loaded):
    dsn, events, *_ = loaded
    sessions = defaultdict(list)
    for e in events:
        sessions[e["session_id"]].append(e)
    expected = {}
    for sid, evs in sessions.items():
        times = [at(e) for e in evs]
        expected[sid] = (evs[0]["org_id"], evs[0]["user_id"], min(times), max(times),
                         round((max(times) - min(times)).total_seconds(), 6), len(evs),
                         sum(e["status"] == "error" for e in evs), sum(e["input_tokens"] for e in evs),
                         sum(e["output_tokens"] for e in evs), sorted({e["tool"] for e in evs if e["tool"]}),
                         sorted({e["model"] for e in evs}))
    rows = query(dsn, """select session_id, org_id, user_id, started_at, ended_at, duration_seconds, events, errors,
                                input_tokens, output_tokens, tools_used, models_used from marts.fct_sessions""")
    actual = {r[0]: (r[1], r[2], r[3], r[4], round(float(r[5]), 6), r[6], r[7], r[8], r[9], r[10], r[11])
              for r in rows}
    assert len(actual) == len(expected) > 1000
    assert actual == expected
    assert any(len(v[9]) > 1 for v in actual.values()) and any(v[4] > 0 for v in actual.values())
    # each session's cost is the cost of its events
    [(mismatched,)] = query(dsn, """
        select count(*) from marts.fct_sessions s
        join (select e.session_id, sum(c.cost_usd) as cost
              from marts.fct_event_costs c join staging.stg_usage__events e using (event_id)
              group by 1) as by_session using (session_id)
        where s.cost_usd is distinct from by_session.cost""")
    assert mismatched == 0


def test_daily_weekly_monthly_active_users_and_growth_match_the_files(loaded):
    dsn, events, *_ = loaded
    active = defaultdict(set)  # (org, day) -> users
    for e in events:
        active[(e["org_id"], at(e).date())].add(e["user_id"])
    days = [(START + timedelta(days=i)).date() for i in range(DAYS)]
    spans = defaultdict(list)  # each org from its first active day to its last
    for org, day in active:
        spans[org].append(day)
    expected_days = {(org, d) for org, seen in spans.items() for d in days if min(seen) <= d <= max(seen)}

    def users(org: str, day: date, span: int) -> set:
        return set().union(*(active.get((org, day - timedelta(days=k)), set()) for k in range(span)))

    rows = query(dsn, """select org_id, day_utc, daily_active_users, weekly_active_users, monthly_active_users,
                                weekly_active_users_growth from marts.fct_active_users_daily""")
    assert {(r[0], r[1]) for r in rows} == expected_days
    for org, day, dau, wau, mau, growth in rows:
        assert (dau, wau, mau) == (len(users(org, day, 1)), len(users(org, day, 7)), len(users(org, day, 30)))
        week_ago = len(users(org, day - timedelta(days=7), 7))
        if day - timedelta(days=7) >= min(spans[org]) and week_ago:
            assert growth == pytest.approx(wau / week_ago - 1)
        else:
            assert growth is None
    assert any(g and abs(g) > 0.01 for *_, g in rows)


def test_weekly_cohorts_match_the_files(loaded):
    dsn, events, *_ = loaded
    weeks = defaultdict(set)  # (org, user) -> Mondays of the weeks they were active
    for e in events:
        day = at(e).date()
        weeks[(e["org_id"], e["user_id"])].add(day - timedelta(days=day.weekday()))
    cohort_users = defaultdict(int)
    cells = defaultdict(int)
    for (org, _), active_weeks in weeks.items():
        first = min(active_weeks)
        cohort_users[(org, first)] += 1
        for week in active_weeks:
            cells[(org, first, (week - first).days // 7)] += 1
    rows = query(dsn, """select org_id, cohort_week, weeks_since_first_seen, cohort_users, active_users, retention
                         from marts.fct_weekly_cohorts""")
    assert {(r[0], r[1], r[2]): r[4] for r in rows} == dict(cells)
    for org, week, offset, size, active_users, retention in rows:
        assert size == cohort_users[(org, week)]
        assert retention == pytest.approx(active_users / size)
        assert offset > 0 or retention == 1.0
    assert {r[2] for r in rows} == {0, 1, 2}  # three weeks of data


def test_usage_by_event_type_tool_action_and_declared_metadata_keys_matches_the_files(loaded):
    dsn, events, *_ = loaded
    expected = defaultdict(lambda: [0, set(), set(), 0, 0])
    for e in events:
        values = {"event_type": e["event_type"], "tool": e["tool"], "action": e["action"],
                  "metadata.team": e["metadata"].get("team"), "metadata.app_version": e["metadata"].get("app_version")}
        for dimension, value in values.items():
            row = expected[(at(e).date(), e["org_id"], dimension, value or "(none)")]
            row[0] += 1
            row[1].add(e["user_id"])
            row[2].add(e["session_id"])
            row[3] += e["status"] == "error"
            row[4] += e["input_tokens"] + e["output_tokens"]
    rows = query(dsn, """select day_utc, org_id, dimension, value, requests, users, sessions, errors, tokens
                         from marts.fct_usage_by_dimension_daily""")
    assert {r[:4]: tuple(r[4:]) for r in rows} == {
        key: (n, len(users), len(sessions), errors, tokens) for key, (n, users, sessions, errors, tokens)
        in expected.items()}
    assert {r[2] for r in rows} == {"event_type", "tool", "action", "metadata.team", "metadata.app_version"}
    assert any(r[3] == "(none)" for r in rows if r[2] == "tool")  # requests that named no tool


def test_funnel_conversion_matches_the_files(loaded):
    """The declared funnel code_fix: tool read_file, then tool run_tests, then action suggest_fix."""
    dsn, events, *_ = loaded
    steps = [("tool", "read_file"), ("tool", "run_tests"), ("action", "suggest_fix")]
    sessions = defaultdict(list)
    for e in events:
        sessions[e["session_id"]].append(e)
    reached = defaultdict(int)  # (day of step 1, org, step) -> sessions
    for evs in sessions.values():
        evs.sort(key=at)
        after, started = None, None
        for number, (field, value) in enumerate(steps, start=1):
            hit = next((e for e in evs if e[field] == value and (after is None or at(e) > after)), None)
            if hit is None:
                break
            after = at(hit)
            started = started or after.date()
            reached[(started, evs[0]["org_id"], number)] += 1
    rows = query(dsn, """select day_utc, org_id, step, sessions, conversion_from_start, conversion_from_previous
                         from marts.fct_funnel_daily where funnel = 'code_fix'""")
    starts = {(d, o) for d, o, s in reached if s == 1}
    assert {(r[0], r[1], r[2]) for r in rows} == {(d, o, s) for d, o in starts for s in (1, 2, 3)}
    for day, org, step, n, from_start, from_previous in rows:
        assert n == reached.get((day, org, step), 0)
        assert from_start == pytest.approx(n / reached[(day, org, 1)])
        previous = reached.get((day, org, step - 1), 0)
        assert from_previous == (pytest.approx(n / previous) if step > 1 and previous else None)
    assert sum(n for (_, _, s), n in reached.items() if s == 3) > 0  # some sessions went all the way


def normal_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def test_experiment_variants_and_their_p_values_match_the_files(loaded):
    dsn, events, *_ = loaded
    for z in (-3.1, -1.0, 0.0, 0.5, 1.96, 4.2):  # the SQL normal distribution function
        [(cdf,)] = query(dsn, "select marts.normal_cdf(%s)", (z,))
        assert cdf == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), abs=1e-7)
    costs = {k: float(v) for k, v in query(dsn, "select event_id, cost_usd from marts.fct_event_costs"
                                                 " where cost_usd is not null")}
    variants = defaultdict(list)
    for e in events:
        variants[(e["metadata"]["experiment"], e["metadata"]["variant"])].append(e)
    stats = {}
    for key, evs in variants.items():
        priced = [costs[e["event_id"]] for e in evs if e["event_id"] in costs]
        mean = sum(priced) / len(priced)
        stats[key] = {"users": len({e["user_id"] for e in evs}), "requests": len(evs),
                      "errors": sum(e["status"] == "error" for e in evs), "priced": len(priced), "mean": mean,
                      "var": sum((c - mean) ** 2 for c in priced) / (len(priced) - 1),
                      "p95": percentile_cont([e["latency_ms"] for e in evs], 0.95)}
    assert set(stats) == {("prompt_v2", "control"), ("prompt_v2", "treatment")}
    control, treatment = stats[("prompt_v2", "control")], stats[("prompt_v2", "treatment")]
    pooled = (control["errors"] + treatment["errors"]) / (control["requests"] + treatment["requests"])
    z_errors = (treatment["errors"] / treatment["requests"] - control["errors"] / control["requests"]) / math.sqrt(
        pooled * (1 - pooled) * (1 / treatment["requests"] + 1 / control["requests"]))
    z_cost = (treatment["mean"] - control["mean"]) / math.sqrt(
        treatment["var"] / treatment["priced"] + control["var"] / control["priced"])
    expected_users = (control["users"] + treatment["users"]) / 2
    chi_square = sum((s["users"] - expected_users) ** 2 / expected_users for s in (control, treatment))

    rows = {r[0]: r[1:] for r in query(dsn, """
        select variant, users, requests, errors, priced_requests, cost_per_request, latency_p95_ms,
               error_rate_p_value, cost_per_request_p_value, srm_chi_square, srm_p_value, sample_ratio_mismatch
        from marts.fct_experiment_results where experiment = 'prompt_v2'""")}
    for name, s in (("control", control), ("treatment", treatment)):
        users, requests, errors, priced, per_request, p95, *_ = rows[name]
        assert (users, requests, errors, priced) == (s["users"], s["requests"], s["errors"], s["priced"])
        assert per_request == pytest.approx(s["mean"], rel=1e-9)
        assert p95 == pytest.approx(s["p95"], rel=0.01)  # merged histograms: the stated accuracy
    *_, error_p, cost_p, chi, srm_p, mismatch = rows["treatment"]
    assert rows["control"][6] is None  # the control is not compared with itself
    assert error_p == pytest.approx(normal_two_sided(z_errors), abs=1e-6)
    assert cost_p == pytest.approx(normal_two_sided(z_cost), abs=1e-6)
    assert chi == pytest.approx(chi_square) and srm_p == pytest.approx(math.erfc(math.sqrt(chi_square / 2)), abs=1e-6)
    assert mismatch is (srm_p < 0.001)


def test_a_broken_split_is_flagged_as_a_sample_ratio_mismatch(loaded):
    """Runs last in this module: it lands one more hour, an experiment with 200 users in control and
    100 in treatment, where an equal split was expected."""
    dsn, events, root, instance = loaded
    hour = START + timedelta(days=DAYS)
    template = {k: v for k, v in events[0].items() if k != "received_at"}
    rows = [{**template, "event_id": f"srm-{i}", "user_id": f"srm-user-{i}", "session_id": f"srm-session-{i}",
             "event_time": (hour + timedelta(seconds=i)).isoformat(),
             "metadata": {"experiment": "new_router", "variant": "control" if i < 200 else "treatment"}}
            for i in range(300)]
    path = landing_path(root, hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    assert run_hours(hour, hour, instance).success and materialize_reports(instance).success

    result = query(dsn, """select variant, users, srm_chi_square, srm_p_value, sample_ratio_mismatch
                           from marts.fct_experiment_results where experiment = 'new_router' order by 1""")
    chi_square = (200 - 150) ** 2 / 150 + (100 - 150) ** 2 / 150
    assert [r[:2] for r in result] == [("control", 200), ("treatment", 100)]
    for _, _, chi, p_value, mismatch in result:
        assert chi == pytest.approx(chi_square)
        assert p_value == pytest.approx(math.erfc(math.sqrt(chi_square / 2)), abs=1e-6)
        assert mismatch is True
