"""Cost marts end to end on a real PostgreSQL, against costs computed here with genai_prices.calc_price.

Nine days of generated logs around two daylight-saving changes (New York springs forward on
2026-03-08, Sydney falls back on 2026-04-05), plus hand-made events for the hard cases: a tiered
price, cache reads and writes, reasoning, an off-peak window, a catalog price that changes on
2026-03-13, a failed request and a model nobody priced.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from orchestration.runs import materialize_reference, materialize_reports
from samples.synthetic import Defects, generate
from tests.conftest import query, run_hours

pytestmark = pytest.mark.db

PROJECT_REFERENCE = Path(__file__).resolve().parents[1] / "reference"
WINDOWS = ((datetime(2026, 3, 7, tzinfo=UTC), 7), (datetime(2026, 4, 4, tzinfo=UTC), 2))
OVERRIDE_FROM, OVERRIDE_TO = datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
OVERRIDES = ("provider,model,valid_from,valid_to,usd_per_mtok_input,usd_per_mtok_output,usd_per_mtok_cache_read\n"
             "vllm,acme-llama-3.1-70b-ft,,,0.60,0.60,\n"
             "openai,gpt-4o-mini,2026-03-09,2026-03-10,{input},{output},{cache_read}\n")
TINY = Decimal("1e-12")


def handmade(event_id: str, at: datetime, provider: str, model: str, input_tokens: int, output: int,
             cached: int = 0, cache_write: int = 0, reasoning: int = 0, status: str = "success") -> dict:
    return {"event_id": event_id, "event_time": at.isoformat(), "org_id": "org_acme", "user_id": "u-hand",
            "service": "support-bot", "provider": provider, "model": model, "input_tokens": input_tokens,
            "cached_input_tokens": cached, "cache_write_tokens": cache_write, "output_tokens": output,
            "reasoning_tokens": reasoning, "status": status, "latency_ms": 900.0,
            "error_code": "server_error" if status == "error" else None, "metadata": {"team": "platform"}}


BEFORE_CHANGE = datetime(2026, 3, 12, 22, tzinfo=UTC)  # claude-sonnet-4-6 has a >200k tier until 2026-03-13
AFTER_CHANGE = datetime(2026, 3, 13, 10, tzinfo=UTC)
HANDMADE = {
    BEFORE_CHANGE: [
        handmade("hand-sonnet46-long-before", BEFORE_CHANGE + timedelta(minutes=10), "anthropic", "claude-sonnet-4-6",
                 250_000, 900, cached=40_000, cache_write=10_000),
        handmade("hand-gemini-tier", BEFORE_CHANGE + timedelta(minutes=12), "google", "gemini-2.5-pro",
                 260_000, 3_000, cached=60_000, reasoning=1_800),
        handmade("hand-sonnet4-cache", BEFORE_CHANGE + timedelta(minutes=14), "anthropic",
                 "claude-sonnet-4-20250514", 12_000, 700, cached=4_000, cache_write=3_000),
        handmade("hand-o4-reasoning", BEFORE_CHANGE + timedelta(minutes=15), "openai", "o4-mini", 3_000, 5_000,
                 cached=1_000, reasoning=3_500),
        handmade("hand-deepseek-offpeak", BEFORE_CHANGE + timedelta(minutes=16), "deepseek", "deepseek-chat",
                 8_000, 1_000, cached=2_000),
        handmade("hand-mystery", BEFORE_CHANGE + timedelta(minutes=17), "acme-labs", "mystery-1", 5_000, 500),
        handmade("hand-failed", BEFORE_CHANGE + timedelta(minutes=18), "openai", "gpt-4o", 9_000, 0,
                 status="error"),
    ],
    AFTER_CHANGE: [
        handmade("hand-sonnet46-long-after", AFTER_CHANGE + timedelta(minutes=5), "anthropic", "claude-sonnet-4-6",
                 250_000, 900, cached=40_000, cache_write=10_000),
        handmade("hand-deepseek-peak", AFTER_CHANGE + timedelta(minutes=6), "deepseek", "deepseek-chat",
                 8_000, 1_000, cached=2_000),
        handmade("hand-mystery-2", AFTER_CHANGE + timedelta(minutes=7), "acme-labs", "mystery-1", 1_000, 100),
    ],
}


def override_rates(text: str) -> dict:
    rates = {}
    for line in text.strip().splitlines()[1:]:
        provider, model, start, end, p_in, p_out, p_read = line.split(",")
        rates[(provider, model)] = (
            datetime.fromisoformat(start).replace(tzinfo=UTC) if start else None,
            datetime.fromisoformat(end).replace(tzinfo=UTC) if end else None,
            Decimal(p_in), Decimal(p_out), Decimal(p_read or p_in))
    return rates


def expected_cost(event: dict, overrides: dict) -> Decimal | None:
    """What one event should cost, computed without the warehouse: an override in its window, else
    genai_prices.calc_price at the event's time; None when neither prices it; 0 when it failed."""
    from genai_prices import Usage, calc_price

    at = datetime.fromisoformat(event["event_time"])
    tokens = {k: event.get(k) or 0 for k in ("input_tokens", "cached_input_tokens", "cache_write_tokens",
                                             "output_tokens", "reasoning_tokens")}
    override = overrides.get((event["provider"], event["model"]))
    if override and (override[0] is None or at >= override[0]) and (override[1] is None or at < override[1]):
        _, _, p_in, p_out, p_read = override
        price = ((tokens["input_tokens"] - tokens["cached_input_tokens"]) * p_in
                 + tokens["cached_input_tokens"] * p_read + tokens["output_tokens"] * p_out) / 1_000_000
    else:
        try:
            usage = Usage(input_tokens=tokens["input_tokens"], cache_read_tokens=tokens["cached_input_tokens"],
                          cache_write_tokens=tokens["cache_write_tokens"], output_tokens=tokens["output_tokens"],
                          output_reasoning_tokens=tokens["reasoning_tokens"])
            price = calc_price(usage,
                               model_ref=event["model"], provider_id=event["provider"],
                               genai_request_timestamp=at).total_price
        except LookupError:
            return None
    return Decimal(0) if event["status"] == "error" else price


def events_in(root: Path) -> dict[str, dict]:
    """Every distinct event of the landing zone (the generator plants no defects here)."""
    events = {}
    for path in sorted(root.glob("dt=*/hour=*/*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as lines:
            for line in lines:
                if line.strip():
                    event = json.loads(line)
                    events.setdefault(event["event_id"], event)
    return events


@pytest.fixture(scope="module")
def priced(server_dsn, dbt_manifest, tmp_path_factory):
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    reference = tmp_path_factory.mktemp("reference")
    for name in ("orgs.csv", "org_budgets.csv"):
        shutil.copy(PROJECT_REFERENCE / name, reference / name)
    overrides_text = OVERRIDES.format(input="1.00", output="2.00", cache_read="")
    (reference / "price_overrides.csv").write_text(overrides_text)
    for var, value in (("WAREHOUSE_DSN", dsn), ("WAREHOUSE_LANDING_DIR", str(root)),
                       ("WAREHOUSE_REFERENCE_DIR", str(reference))):
        mp.setenv(var, value)
    for start, days in WINDOWS:
        generate(root, start, days, 1500, seed=21, defects=Defects(0, 0, 0, 0))
    for hour, events in HANDMADE.items():
        path = root / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "handmade.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_reference(instance).success
    for start, days in WINDOWS:
        assert run_hours(start, start + timedelta(days=days) - timedelta(hours=1), instance).success
    assert materialize_reports(instance).success
    yield dsn, root, reference, instance, override_rates(overrides_text)
    mp.undo()


def event_costs(dsn: str) -> dict[str, tuple]:
    return {event_id: (cost, is_priced, source) for event_id, cost, is_priced, source in query(
        dsn, "select event_id, cost_usd, is_priced, price_source from marts.fct_event_costs")}


def test_hard_cases_cost_what_genai_prices_says_at_their_event_time(priced):
    dsn, _, _, _, overrides = priced
    stored = event_costs(dsn)
    for events in HANDMADE.values():
        for event in events:
            expected = expected_cost(event, overrides)
            cost, is_priced, _ = stored[event["event_id"]]
            if expected is None:
                assert (cost, is_priced) == (None, False), event["event_id"]
            else:
                assert is_priced and abs(cost - expected) < TINY, (event["event_id"], cost, expected)
    # the tier above 200k input tokens ended on 2026-03-13: the same request costs less after it
    assert stored["hand-sonnet46-long-after"][0] < stored["hand-sonnet46-long-before"][0]
    # deepseek-chat is half price between 16:30 and 00:30 UTC
    assert stored["hand-deepseek-peak"][0] == stored["hand-deepseek-offpeak"][0] * 2
    assert stored["hand-failed"][:2] == (0, True)


def test_every_event_costs_what_is_computed_independently_by_day_org_and_model(priced):
    dsn, root, _, _, overrides = priced
    expected: dict[tuple, Decimal] = defaultdict(Decimal)
    unpriced: dict[tuple, int] = defaultdict(int)
    for event in events_in(root).values():
        at = datetime.fromisoformat(event["event_time"]).astimezone(UTC)
        key = (at.date(), event["org_id"], event["provider"], event["model"])
        cost = expected_cost(event, overrides)
        if cost is None:
            unpriced[key] += 1
        else:
            expected[key] += cost
    mart = {(d, o, p, m): (c, u) for d, o, p, m, c, u in query(
        dsn, """select day_utc, org_id, provider, model, sum(cost_usd), sum(unpriced_requests)
                from marts.fct_cost_daily group by 1, 2, 3, 4""")}
    assert set(mart) == set(expected) | set(unpriced)
    for key, (cost, unpriced_requests) in mart.items():
        assert abs(cost - expected.get(key, 0)) < Decimal("1e-9"), key
        assert unpriced_requests == unpriced.get(key, 0), key
    assert sum(unpriced.values()) > 0 and len(expected) > 100


def test_an_override_wins_inside_its_window_only(priced):
    dsn, *_ = priced
    rows = query(dsn, """select event_time >= %s and event_time < %s as inside, price_source, count(*)
                         from marts.fct_event_costs where model = 'gpt-4o-mini' group by 1, 2""",
                 (OVERRIDE_FROM, OVERRIDE_TO))
    by = {(inside, source): n for inside, source, n in rows}
    assert by[(True, "override")] > 0 and by[(False, "catalog")] > 0
    assert set(by) == {(True, "override"), (False, "catalog")}


def test_the_planner_knows_how_many_rows_the_pricing_join_reads(priced):
    # never analyzed (autovacuum is off on PostgreSQL 15 here), one override row was planned as 220 and
    # the events were sorted twice to merge-join them
    dsn, *_ = priced
    for table in ("price_overrides", "orgs", "org_budgets", "catalog_prices", "model_matches"):
        [(planned, held)] = query(dsn, f"""select (select reltuples from pg_class
                                                   where oid = 'reference.{table}'::regclass)::bigint,
                                                  (select count(*) from reference.{table})""")
        assert planned == held > 0, table


def test_an_unpriced_model_gets_a_null_cost_a_flag_a_metric_and_an_insight(priced):
    dsn, root, *_ = priced
    counts: dict[tuple, int] = defaultdict(int)
    for event in events_in(root).values():
        if event["model"] in ("mystery-1", "triage-classifier-v2"):
            day = datetime.fromisoformat(event["event_time"]).astimezone(UTC).date()
            counts[(day, event["org_id"], event["provider"], event["model"])] += 1
    insights = {(day, org, title) for day, org, title in query(
        dsn, "select day, org_id, title from marts.insights where rule = 'unpriced_model' and status <> 'resolved'")}
    assert insights == {(day, org, f"{n} requests to unpriced model {provider}/{model}")
                        for (day, org, provider, model), n in counts.items()}
    assert query(dsn, "select count(*) from marts.fct_event_costs where not is_priced and cost_usd is not null"
                 ) == [(0,)]
    metric = dict(((d, p, m), u) for d, p, m, u in query(
        dsn, "select day_utc, provider, model, unpriced_requests from marts.fct_cost_variance_daily"
             " where unpriced_requests > 0"))
    per_model: dict[tuple, int] = defaultdict(int)
    for (day, _, provider, model), n in counts.items():
        per_model[(day, provider, model)] += n
    assert metric == per_model
    # status carries across days: new, ongoing while raised day after day, resolved the day after
    [(last_day,)] = query(dsn, "select max(day_utc) from marts.fct_performance_daily")
    for (org, provider, model) in {k[1:] for k in counts}:
        rows = dict(query(dsn, "select day, status from marts.insights where subject = %s",
                          (f"{org}|{provider}|{model}",)))
        raised = {day for (day, o, p, m) in counts if (o, p, m) == (org, provider, model)}
        expected = {day: "ongoing" if day - timedelta(days=1) in raised else "new" for day in raised}
        expected |= {day + timedelta(days=1): "resolved" for day in raised
                     if day + timedelta(days=1) not in raised and day < last_day}
        assert rows == expected, model


def test_daylight_saving_days_have_23_and_25_hours_in_the_org_local_rollup(priced):
    dsn, *_ = priced
    for org, zone, day, hours in (("org_acme", "America/New_York", "2026-03-08", 23),
                                  ("org_hooli", "Australia/Sydney", "2026-04-05", 25)):
        local_midnight = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
        first = local_midnight.astimezone(UTC)
        end = (local_midnight + timedelta(days=1)).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
        assert end - first == timedelta(hours=hours)
        [(hours_in_day, local_cost)] = query(
            dsn, "select max(hours_in_day), sum(cost_usd) from marts.fct_cost_daily_local"
                 " where org_id = %s and day_local = %s", (org, day))
        [(hourly_cost,)] = query(dsn, "select sum(cost_usd) from marts.fct_cost_hourly"
                                      " where org_id = %s and hour_utc >= %s and hour_utc < %s", (org, first, end))
        assert hours_in_day == hours
        assert local_cost == hourly_cost


def test_local_days_and_utc_days_hold_the_same_total_for_the_whole_period(priced):
    dsn, *_ = priced
    local = dict(query(dsn, "select org_id, sum(cost_usd) from marts.fct_cost_daily_local group by 1"))
    utc = dict(query(dsn, "select org_id, sum(cost_usd) from marts.fct_cost_daily group by 1"))
    events = dict(query(dsn, "select org_id, coalesce(sum(cost_usd), 0) from marts.fct_event_costs group by 1"))
    assert local == utc == events


def test_variance_compares_computed_and_provider_cost_over_requests_with_both(priced):
    dsn, root, _, _, overrides = priced
    expected: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for event in events_in(root).values():
        cost = expected_cost(event, overrides)
        if cost is not None and event.get("provider_cost_usd") is not None:
            day = datetime.fromisoformat(event["event_time"]).astimezone(UTC).date()
            pair = expected[(day, event["provider"], event["model"])]
            pair[0] += cost
            pair[1] += Decimal(str(event["provider_cost_usd"]))
    rows = query(dsn, """select day_utc, provider, model, compared_computed_cost_usd, compared_provider_cost_usd,
                                variance_usd from marts.fct_cost_variance_daily where compared_requests > 0""")
    assert {(d, p, m) for d, p, m, *_ in rows} == set(expected)
    for day, provider, model, computed, reported, variance in rows:
        want_computed, want_reported = expected[(day, provider, model)]
        assert abs(computed - want_computed) < Decimal("1e-9")
        assert abs(reported - want_reported) < Decimal("1e-6")  # reported costs are stored as floats
        assert variance == computed - reported


def test_changing_a_price_restates_exactly_the_affected_days_and_the_ledger_adds_up(priced):
    from orchestration.definitions import defs
    from orchestration.defs.restatement import cost_restatement_job, price_restatement_sensor

    dsn, root, reference, instance, overrides = priced
    before = {(d, o, m): c for d, o, m, c in query(
        dsn, "select day_utc, org_id, model, sum(cost_usd) from marts.fct_cost_daily group by 1, 2, 3")}
    new_text = OVERRIDES.format(input="3.00", output="6.00", cache_read="0.50")
    (reference / "price_overrides.csv").write_text(new_text)
    new_overrides = override_rates(new_text)
    window_events = [e for e in events_in(root).values() if e["model"] == "gpt-4o-mini"
                     and OVERRIDE_FROM <= datetime.fromisoformat(e["event_time"]) < OVERRIDE_TO]
    want_hours = sorted({datetime.fromisoformat(e["event_time"]).astimezone(UTC).strftime("%Y-%m-%d-%H:00")
                         for e in window_events})

    reload = materialize_reference(instance)
    assert reload.success
    reported = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in reload.get_asset_materialization_events()}
    assert reported["reference/price_overrides"]["restate_hours"].value == want_hours

    result = price_restatement_sensor(dg.build_sensor_context(instance=instance))
    assert result.run_requests
    for request in result.run_requests:
        run = defs().resolve_job_def(cost_restatement_job.name).execute_in_process(instance=instance,
                                                                                   tags=request.tags)
        assert run.success

    after = {(d, o, m): c for d, o, m, c in query(
        dsn, "select day_utc, org_id, model, sum(cost_usd) from marts.fct_cost_daily group by 1, 2, 3")}
    changed = {key for key in before if after[key] != before[key]}
    assert {day for day, _, _ in changed} == {OVERRIDE_FROM.date()}
    assert {model for _, _, model in changed} == {"gpt-4o-mini"}

    ledger = {(d, o, m): (old, new, delta) for d, o, m, old, new, delta in query(
        dsn, "select day_utc, org_id, model, old_cost_usd, new_cost_usd, delta_usd from audit.cost_restatements")}
    assert set(ledger) == changed
    for key, (old, new, delta) in ledger.items():
        assert (old, new, delta) == (before[key], after[key], after[key] - before[key])
    independent = sum(expected_cost(e, new_overrides) - expected_cost(e, overrides) for e in window_events)
    assert abs(sum(delta for _, _, delta in ledger.values()) - independent) < Decimal("1e-9")
    # prices reloaded again without a change: nothing to restate
    again = materialize_reference(instance)
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in again.get_asset_materialization_events()}
    assert meta["reference/price_overrides"]["restate_hours"].value == []


def test_a_broken_reference_file_stops_the_load_and_keeps_the_tables(priced, tmp_path, monkeypatch):
    dsn, *_ = priced
    before = query(dsn, "select * from reference.price_overrides order by price_id")
    (tmp_path / "price_overrides.csv").write_text("provider,model,usd_per_mtok_input,usd_per_mtok_output\n"
                                                  "vllm,ft-2,cheap,1\n")
    monkeypatch.setenv("WAREHOUSE_REFERENCE_DIR", str(tmp_path))
    result = materialize_reference(dg.DagsterInstance.ephemeral())
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "line 2: usd_per_mtok_input 'cheap' is not a number" in str(failure.event_specific_data.error)
    assert query(dsn, "select * from reference.price_overrides order by price_id") == before


def test_the_hourly_runs_request_one_reports_rebuild(priced):
    from orchestration.defs.automation import MARTS_JOBS, reports_after_marts_sensor

    instance = priced[3]
    # the module's runs so far: hourly runs, maybe a price restatement, reference loads, a reports run
    changed = [r for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
               if r.job_name in MARTS_JOBS]
    assert any(r.job_name == "hourly_usage_job" for r in changed)
    # its first tick (the UI just opened) starts no dbt run: it watches from there on
    first = reports_after_marts_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert first.run_requests == [] and first.skip_message.startswith("watching from now on")
    again = reports_after_marts_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert again.run_requests == [] and again.skip_message == "no run has changed the marts since the last rebuild"
    # from before the module's runs, the runs that changed the marts ask for one rebuild
    tick = reports_after_marts_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor="0"))
    [request] = tick.run_requests
    counts = Counter(r.job_name for r in changed)
    assert request.tags["warehouse/reason"] == "after " + ", ".join(f"{n} {job}" for job, n in sorted(counts.items()))
    assert request.run_key == f"reports-after-{changed[0].run_id}"  # get_runs lists the newest first
    again = reports_after_marts_sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=tick.cursor))
    assert again.run_requests == [] and again.skip_message == "no run has changed the marts since the last rebuild"


def dbt_test(dsn: str, *select: str):
    """`dbt test` of the named tests over all time (the vars' defaults), as a user would run it."""
    import os
    import subprocess

    from orchestration.database import dbt_env
    from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR

    return subprocess.run([DBT_EXECUTABLE, "test", "--select", *select, "--project-dir", str(DBT_PROJECT_DIR),
                           "--profiles-dir", str(DBT_PROJECT_DIR)],
                          env={**os.environ, **dbt_env(dsn)}, capture_output=True, text=True)


def test_reconciliation_finds_a_lost_hourly_row_and_accepts_retention(priced):
    """Runs last in this module: it deletes hourly rows the way retention does."""
    dsn = priced[0]
    tests = ("assert_cost_hourly_equals_event_costs", "assert_cost_days_equal_sum_of_hours")
    assert dbt_test(dsn, *tests).returncode == 0

    [row] = query(dsn, "select * from build.fct_cost_hourly where unpriced_requests = 0 order by cost_usd desc limit 1")
    query(dsn, "delete from build.fct_cost_hourly where hour_utc = %s and org_id = %s and team = %s and user_id = %s"
               " and service = %s and provider = %s and model = %s returning 1", row[:7])
    lost = dbt_test(dsn, *tests)
    assert lost.returncode != 0
    failed = {name for name in tests if f"FAIL 1 {name}" in lost.stdout or f"Failure in test {name}" in lost.stdout}
    assert failed == set(tests), lost.stdout[-2000:]  # the hour no longer matches its events nor its day

    placeholders = ", ".join(["%s"] * len(row))
    query(dsn, f"insert into build.fct_cost_hourly values ({placeholders}) returning 1", row)
    assert dbt_test(dsn, *tests).returncode == 0
    # retention deletes the oldest hours and keeps their days: not a reconciliation failure
    query(dsn, "delete from build.fct_cost_hourly where hour_utc < (select min(hour_utc) + interval '30 hours'"
               " from build.fct_cost_hourly) returning 1")
    assert dbt_test(dsn, "assert_cost_days_equal_sum_of_hours").returncode == 0
