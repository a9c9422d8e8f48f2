{#- pre_hook: the planner judges the chained aggregates to be one row each and picks nested loops
    that take minutes; hash joins take a second or two -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_utc',
        indexes=[
            {'columns': ['hour_utc']},
            {'columns': ['org_id', 'hour_utc']},
            {'columns': ['built_at']},
        ],
        pre_hook="set enable_nestloop = off",
        post_hook="reset enable_nestloop",
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Hours when an org's use of a model departed from what that hour of the week usually looks like:
-- requests, cost, error rate and p95 latency, each against the same UTC hour of the week in the
-- previous var('anomaly_baseline_weeks') weeks (traffic is seasonal by hour and weekday). Only
-- departures scoring at least var('anomaly_score_threshold') are kept. How each score is computed
-- is in _insights.yml; the rollups alone are read, so it works after the raw events are gone.

{% set weeks = var('anomaly_baseline_weeks') %}
{% set min_weeks = var('anomaly_min_baseline_weeks') %}
{% set min_requests = var('anomaly_min_requests') %}
{% set min_latency_requests = var('anomaly_min_latency_requests') %}
{% set week = "interval '168 hours'" %}

with

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),
{% endif %}

targets as (

    {% if is_incremental() %}
    select event_hour as hour_utc from affected_hours
    {% else %}
    select distinct hour_utc from {{ ref('fct_performance_hourly') }}
    {% endif %}

),

-- the target hours, their neighbours within 3 hours, and the same hours of the week in the weeks
-- before them
wanted_hours as (

    select distinct targets.hour_utc + j * interval '1 hour' - k * {{ week }} as hour_utc
    from targets
    cross join generate_series(-3, 3) as j
    cross join generate_series(0, {{ weeks }}) as k

),

performance as (

    select
        hour_utc,
        org_id,
        provider,
        model,
        sum(requests)::bigint as requests,
        sum(errors)::bigint as errors,
        sum(latency_count)::bigint as latency_count,
        marts.histogram_quantile(marts.array_concat_agg(latency_buckets),
                                 marts.array_concat_agg(latency_counts), 0.95) as latency_p95_ms
    from {{ ref('fct_performance_hourly') }}
    where hour_utc in (select hour_utc from wanted_hours)
    group by 1, 2, 3, 4

),

costs as (

    select hour_utc, org_id, provider, model, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_hourly') }}
    where hour_utc in (select hour_utc from wanted_hours)
    group by 1, 2, 3, 4

),

hourly as (

    select performance.*, coalesce(costs.cost_usd, 0) as cost_usd
    from performance
    left join costs using (hour_utc, org_id, provider, model)

),

-- a week before an org first used a model is no evidence of zero use
first_seen as (

    select org_id, provider, model, min(hour_utc) as first_hour
    from {{ ref('fct_performance_hourly') }}
    group by 1, 2, 3

),

-- every org x model used in a target hour or in one of its baseline hours (so a model that went
-- silent is seen too)
cells as (

    select distinct targets.hour_utc, hourly.org_id, hourly.provider, hourly.model
    from targets
    cross join generate_series(0, {{ weeks }}) as k
    join hourly on hourly.hour_utc = targets.hour_utc - k * {{ week }}

),

-- for each cell, the hours offset by j (-3..3) in each baseline week k: j = 0 is the baseline itself;
-- all seven slots together say how much an hour varies from week to week (requests come in sessions
-- and costs vary by request, so both vary more than a Poisson count would)
baseline_samples as (

    select
        cells.hour_utc,
        cells.org_id,
        cells.provider,
        cells.model,
        j,
        coalesce(hourly.requests, 0) as requests,
        coalesce(hourly.errors, 0) as errors,
        coalesce(hourly.cost_usd, 0) as cost_usd,
        case when hourly.latency_count >= {{ min_latency_requests }} then ln(hourly.latency_p95_ms) end as log_p95
    from cells
    join first_seen using (org_id, provider, model)
    cross join generate_series(-3, 3) as j
    cross join generate_series(1, {{ weeks }}) as k
    left join hourly
        on hourly.org_id = cells.org_id
       and hourly.provider = cells.provider
       and hourly.model = cells.model
       and hourly.hour_utc = cells.hour_utc + j * interval '1 hour' - k * {{ week }}
    where cells.hour_utc + j * interval '1 hour' - k * {{ week }} >= first_seen.first_hour

),

slots as (

    select
        hour_utc, org_id, provider, model, j,
        count(*) as weeks,
        avg(requests) as requests_mean,
        var_samp(requests) as requests_var,
        avg(cost_usd) as cost_mean,
        var_samp(cost_usd) as cost_var,
        count(log_p95) as latency_weeks,
        var_samp(log_p95) as log_p95_var
    from baseline_samples
    group by 1, 2, 3, 4, 5

),

-- pooled week-to-week variance relative to the level: variance = dispersion x mean
dispersion as (

    select
        hour_utc, org_id, provider, model,
        sum(requests_var * (weeks - 1)) filter (where weeks > 1)
            / nullif(sum(requests_mean * (weeks - 1)) filter (where weeks > 1), 0) as requests_dispersion,
        sum(cost_var * (weeks - 1)) filter (where weeks > 1)
            / nullif(sum(cost_mean * (weeks - 1)) filter (where weeks > 1), 0) as cost_dispersion,
        sqrt(sum(log_p95_var * (latency_weeks - 1)) filter (where latency_weeks > 1)
             / nullif(sum(latency_weeks - 1) filter (where latency_weeks > 1), 0)) as log_p95_sd
    from slots
    group by 1, 2, 3, 4

),

baselines as (

    select
        baseline_samples.hour_utc,
        baseline_samples.org_id,
        baseline_samples.provider,
        baseline_samples.model,
        count(*) as baseline_weeks,
        avg(requests) as requests_mean,
        avg(cost_usd) as cost_mean,
        sum(requests) as requests_total,
        sum(errors) as errors_total,
        count(log_p95) as latency_weeks,
        avg(log_p95) as log_p95_mean,
        greatest(min(dispersion.requests_dispersion), 1) as requests_dispersion,
        coalesce(min(dispersion.cost_dispersion), 0) as cost_dispersion,
        coalesce(min(dispersion.log_p95_sd), 0) as log_p95_sd
    from baseline_samples
    join dispersion using (hour_utc, org_id, provider, model)
    where j = 0
    group by 1, 2, 3, 4

),

observed as (

    select
        cells.*,
        coalesce(hourly.requests, 0) as requests,
        coalesce(hourly.errors, 0) as errors,
        coalesce(hourly.cost_usd, 0) as cost_usd,
        coalesce(hourly.latency_count, 0) as latency_count,
        hourly.latency_p95_ms
    from cells
    left join hourly using (hour_utc, org_id, provider, model)

),

compared as (

    select
        observed.*,
        baselines.baseline_weeks,
        baselines.requests_mean,
        baselines.cost_mean,
        baselines.requests_total,
        baselines.errors_total,
        baselines.latency_weeks,
        baselines.log_p95_mean,
        baselines.requests_dispersion,
        baselines.cost_dispersion,
        baselines.log_p95_sd
    from observed
    join baselines using (hour_utc, org_id, provider, model)
    where baselines.baseline_weeks >= {{ min_weeks }}

),

scored as (

    -- requests: the expected variance is dispersion x mean, for this hour and for the mean of the
    -- baseline weeks (1 + 1 / weeks); at least 10 % of the level, for drifts
    select
        hour_utc, org_id, provider, model, baseline_weeks, requests,
        'requests' as metric,
        c.requests::double precision as observed,
        requests_mean::double precision as expected,
        (c.requests - requests_mean)
            / greatest(sqrt(requests_dispersion * requests_mean * (1 + 1.0 / baseline_weeks)),
                       0.1 * requests_mean, 1) as score
    from compared as c
    where requests_mean >= {{ min_requests }}

    union all

    -- cost: likewise
    select
        hour_utc, org_id, provider, model, baseline_weeks, requests,
        'cost_usd',
        c.cost_usd::double precision,
        cost_mean::double precision,
        (c.cost_usd - cost_mean)
            / greatest(sqrt(cost_dispersion * cost_mean * (1 + 1.0 / baseline_weeks)), 0.1 * cost_mean)
    from compared as c
    where requests_mean >= {{ min_requests }} and cost_mean > 0

    union all

    -- error rate: a binomial test against the baseline weeks' pooled rate (with one error and one
    -- success added, so a clean baseline still has a rate)
    select
        hour_utc, org_id, provider, model, baseline_weeks, requests,
        'error_rate',
        c.errors::double precision / c.requests,
        (errors_total + 1.0) / (requests_total + 2.0),
        (c.errors - c.requests * (errors_total + 1.0) / (requests_total + 2.0))
            / sqrt(c.requests * (errors_total + 1.0) / (requests_total + 2.0)
                   * (1 - (errors_total + 1.0) / (requests_total + 2.0)))
    from compared as c
    where c.requests >= {{ min_requests }}

    union all

    -- p95 latency, on a log scale: the pooled week-to-week spread, the sampling error of a p95 of
    -- this many requests (about 1 / sqrt(n)), or 5 %, whichever is widest
    select
        hour_utc, org_id, provider, model, baseline_weeks, requests,
        'latency_p95_ms',
        latency_p95_ms,
        exp(log_p95_mean),
        (ln(latency_p95_ms) - log_p95_mean)
            / greatest(log_p95_sd * sqrt(1 + 1.0 / latency_weeks), 1 / sqrt(latency_count), 0.05)
    from compared as c
    where latency_count >= {{ min_latency_requests }} and latency_weeks >= {{ min_weeks }}

)

select
    md5(org_id || '|' || provider || '|' || model || '|' || hour_utc || '|' || metric) as anomaly_id,
    hour_utc,
    org_id,
    provider,
    model,
    metric,
    observed,
    expected,
    score,
    case when score > 0 then 'up' else 'down' end as direction,
    case when abs(score) >= 2 * {{ var('anomaly_score_threshold') }} then 'critical' else 'warning' end as severity,
    requests,
    baseline_weeks,
    now() as built_at  -- publication copies the rows built since it last ran
from scored
where abs(score) >= {{ var('anomaly_score_threshold') }}
