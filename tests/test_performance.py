"""Performance marts on a real PostgreSQL, against numbers computed here from the landing files:
request and error counts by code, generation speed, and percentiles read from merged histograms,
which must stay within the stated 1 % of the exact values, for days and for any range of hours."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from samples.synthetic import Defects, generate
from tests.conftest import query, run_hours

pytestmark = pytest.mark.db

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 2
ACCURACY = 0.01  # dbt var latency_relative_accuracy
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


@pytest.fixture(scope="module")
def loaded(server_dsn, dbt_manifest, tmp_path_factory):
    from tests.conftest import TEST_DATABASE, fresh_database

    mp = pytest.MonkeyPatch()
    dsn = fresh_database(server_dsn, TEST_DATABASE)
    root = tmp_path_factory.mktemp("landing")
    mp.setenv("WAREHOUSE_DSN", dsn)
    mp.setenv("WAREHOUSE_LANDING_DIR", str(root))
    generate(root, START, DAYS, 6000, seed=21, defects=Defects(0, 0, 0, 0))  # every line one valid event
    assert run_hours(START, START + timedelta(days=DAYS) - timedelta(hours=1)).success
    events = [json.loads(line) for path in sorted(root.rglob("*.jsonl.gz"))
              for line in gzip.open(path, "rt").read().splitlines()]
    yield dsn, events
    mp.undo()


def hour_of(event: dict) -> datetime:
    return datetime.fromisoformat(event["event_time"]).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: interpolated between the values at ranks floor and ceil of q (n - 1)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_requests_errors_by_code_and_speed_match_the_files(loaded):
    dsn, events = loaded
    expected = defaultdict(lambda: {"requests": 0, "errors": Counter(), "tokens": 0, "seconds": 0.0})
    for e in events:
        key = (hour_of(e).date(), e["org_id"], e["service"] or "unknown", e["provider"], e["model"])
        row = expected[key]
        row["requests"] += 1
        if e["status"] == "error":
            row["errors"][e["error_code"] or "unknown"] += 1
        elif e["ttft_ms"] is not None and e["latency_ms"] > e["ttft_ms"]:
            row["tokens"] += e["output_tokens"]
            row["seconds"] += (e["latency_ms"] - e["ttft_ms"]) / 1000
    rows = query(dsn, """select day_utc, org_id, service, provider, model, requests, errors, errors_by_code,
                                streamed_output_tokens, generation_seconds, output_tokens_per_second
                         from marts.fct_performance_daily""")
    assert {r[:5] for r in rows} == set(expected)
    for day, org, service, provider, model, requests, errors, by_code, tokens, seconds, speed in rows:
        want = expected[(day, org, service, provider, model)]
        assert (requests, errors, by_code) == (want["requests"], sum(want["errors"].values()), dict(want["errors"]))
        assert tokens == want["tokens"]
        assert float(seconds) == pytest.approx(want["seconds"], rel=1e-9)
        assert float(speed or 0) == pytest.approx(want["tokens"] / want["seconds"] if want["seconds"] else 0, rel=1e-9)
    assert sum(r[6] for r in rows) > 0 and any(len(r[7]) > 1 for r in rows)  # errors of several codes


def test_daily_percentiles_are_within_one_percent_of_the_exact_ones(loaded):
    dsn, events = loaded
    latencies, ttfts = defaultdict(list), defaultdict(list)
    for e in events:
        key = (hour_of(e).date(), e["org_id"], e["model"])
        latencies[key].append(e["latency_ms"])
        if e["ttft_ms"] is not None:
            ttfts[key].append(e["ttft_ms"])
    # the day, org and model level, merged from the service level inside SQL, like a BI query would
    rows = query(dsn, """
        with merged as (
            select day_utc, org_id, model, u.b, sum(u.n)::bigint as n
            from marts.fct_performance_daily, unnest(latency_buckets, latency_counts) as u(b, n)
            group by 1, 2, 3, 4)
        select day_utc, org_id, model, sum(n),
               marts.histogram_quantile(array_agg(b), array_agg(n), 0.50),
               marts.histogram_quantile(array_agg(b), array_agg(n), 0.90),
               marts.histogram_quantile(array_agg(b), array_agg(n), 0.95),
               marts.histogram_quantile(array_agg(b), array_agg(n), 0.99)
        from merged group by 1, 2, 3""")
    assert {r[:3] for r in rows} == set(latencies)
    worst = 0.0
    for day, org, model, n, *estimates in rows:
        values = latencies[(day, org, model)]
        assert n == len(values)
        for q, estimate in zip(QUANTILES.values(), estimates, strict=True):
            exact = percentile_cont(values, q)
            worst = max(worst, abs(estimate - exact) / exact)
    assert worst <= ACCURACY + 1e-12
    assert worst > ACCURACY / 10  # the comparison has teeth: the estimates are not the exact values

    # the mart's own columns, at its own grain
    for day, org, service, provider, model, p50, p95 in query(dsn, """
            select day_utc, org_id, service, provider, model, ttft_p50_ms, ttft_p95_ms
            from marts.fct_performance_daily where ttft_count > 0"""):
        values = [e["ttft_ms"] for e in events if e["ttft_ms"] is not None and hour_of(e).date() == day
                  and e["org_id"] == org and (e["service"] or "unknown") == service
                  and (e["provider"], e["model"]) == (provider, model)]
        for estimate, q in ((p50, 0.5), (p95, 0.95)):
            assert abs(estimate - percentile_cont(values, q)) <= ACCURACY * percentile_cont(values, q) + 1e-9


def test_any_range_and_dimension_comes_from_the_hourly_rollup_alone(loaded):
    """p95 latency by provider over a 30-hour window that cuts both days: no raw event is read."""
    dsn, events = loaded
    first, last = START + timedelta(hours=9), START + timedelta(hours=38)
    by_provider = defaultdict(list)
    for e in events:
        if first <= hour_of(e) <= last:
            by_provider[e["provider"]].append(e["latency_ms"])
    rows = dict((p, (n, v)) for p, n, v in query(dsn, """
        select provider, sum(u.n), marts.histogram_quantile(array_agg(u.b), array_agg(u.n), 0.95)
        from marts.fct_performance_hourly, unnest(latency_buckets, latency_counts) as u(b, n)
        where hour_utc between %s and %s
        group by provider""", (first, last)))
    assert set(rows) == set(by_provider)
    for provider, (n, estimate) in rows.items():
        exact = percentile_cont(by_provider[provider], 0.95)
        assert n == len(by_provider[provider])
        assert abs(estimate - exact) <= ACCURACY * exact + 1e-9, provider
    # the query of docs/marts.md, verbatim over this window: the same percentiles, and the requests beside them are
    # the events' count (the unnest form would repeat each row once per bucket)
    readme = (Path(__file__).resolve().parent.parent / "docs" / "marts.md").read_text()
    [example] = re.findall(r"```sql\n(select provider,\s+sum\(requests\).*?latency_quantile.*?)```", readme, re.S)
    example = example.replace("hour_utc >= now() - interval '7 days'", "hour_utc between %s and %s")
    answered = {p: (n, v) for p, n, v in query(dsn, example.rstrip().rstrip(";"), (first, last))}
    assert {p: n for p, (n, _) in answered.items()} == {p: len(v) for p, v in by_provider.items()}
    assert {p: v for p, (_, v) in answered.items()} == pytest.approx({p: v for p, (_, v) in rows.items()},
                                                                    rel=1e-12)
    concatenated = dict(query(dsn, """
        select provider, marts.histogram_quantile(marts.array_concat_agg(latency_buckets),
                                                  marts.array_concat_agg(latency_counts), 0.95)
        from marts.fct_performance_hourly
        where hour_utc between %s and %s
        group by provider""", (first, last)))
    assert concatenated == pytest.approx({p: v for p, (_, v) in rows.items()}, rel=1e-12)


def test_merged_percentiles_agree_with_postgres_percentile_cont_over_raw_events(loaded):
    dsn, _ = loaded
    [(compared, worst)] = query(dsn, """
        with exact as (
            select (event_hour at time zone 'UTC')::date as day_utc, org_id, model,
                   percentile_cont(array[0.5, 0.9, 0.95, 0.99]) within group (order by latency_ms) as p
            from staging.stg_usage__events group by 1, 2, 3),
        merged as (
            select day_utc, org_id, model, u.b, sum(u.n)::bigint as n
            from marts.fct_performance_daily, unnest(latency_buckets, latency_counts) as u(b, n)
            group by 1, 2, 3, 4),
        estimated as (
            select day_utc, org_id, model,
                   array[marts.histogram_quantile(array_agg(b), array_agg(n), 0.5),
                         marts.histogram_quantile(array_agg(b), array_agg(n), 0.9),
                         marts.histogram_quantile(array_agg(b), array_agg(n), 0.95),
                         marts.histogram_quantile(array_agg(b), array_agg(n), 0.99)] as p
            from merged group by 1, 2, 3)
        select count(*), max(abs(estimated.p[i] - exact.p[i]) / exact.p[i])
        from exact join estimated using (day_utc, org_id, model), generate_series(1, 4) as i""")
    assert compared == 4 * len(query(dsn, "select distinct day_utc, org_id, model from marts.fct_performance_daily"))
    assert ACCURACY / 10 < worst <= ACCURACY + 1e-12
