{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Things someone should act on: one row per day, rule and subject, with a deterministic id (a rebuild
-- never duplicates one), the money or requests at stake, and a status that carries across days
-- (new; ongoing when the same finding was raised the day before; resolved on the first day it is
-- no longer raised). The rules and their arithmetic are documented in _insights.yml; their
-- thresholds are the insight_* vars in dbt_project.yml. Days are UTC days, except budget burn,
-- which follows the org's local month like fct_org_monthly_spend.

{% set min_requests = var('insight_min_requests') %}

with

cost_days as (

    select
        day_utc as day,
        org_id,
        service,
        provider,
        model,
        sum(requests)::bigint as requests,
        sum(unpriced_requests)::bigint as unpriced_requests,
        sum(cost_usd) as cost_usd,
        sum(uncached_input_tokens)::bigint as uncached_input_tokens,
        sum(cache_read_tokens)::bigint as cache_read_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(non_reasoning_output_tokens + reasoning_tokens)::bigint as output_tokens
    from {{ ref('fct_cost_daily') }}
    group by 1, 2, 3, 4, 5

),

performance_days as (

    select
        day_utc as day,
        org_id,
        service,
        provider,
        model,
        requests,
        errors,
        latency_buckets,
        latency_counts
    from {{ ref('fct_performance_daily') }}

),

days as (

    select distinct day from performance_days

),

org_days as (

    select day, org_id, sum(requests) as requests from performance_days group by 1, 2

),

-- the 7 days to each day, per org, service and model: the window the cost rules judge
model_weeks as (

    select
        days.day,
        p.org_id,
        p.service,
        p.provider,
        p.model,
        sum(p.requests)::bigint as requests,
        sum(p.errors)::bigint as errors,
        marts.histogram_quantile(marts.array_concat_agg(p.latency_buckets),
                                 marts.array_concat_agg(p.latency_counts), 0.95) as latency_p95_ms
    from days
    join performance_days as p on p.day between days.day - 6 and days.day
    group by 1, 2, 3, 4, 5

),

cost_weeks as (

    select
        days.day,
        c.org_id,
        c.service,
        c.provider,
        c.model,
        sum(c.unpriced_requests)::bigint as unpriced_requests,
        sum(c.cost_usd) as cost_usd,
        sum(c.uncached_input_tokens)::bigint as uncached_input_tokens,
        sum(c.cache_read_tokens)::bigint as cache_read_tokens,
        sum(c.cache_write_tokens)::bigint as cache_write_tokens
    from days
    join cost_days as c on c.day between days.day - 6 and days.day
    group by 1, 2, 3, 4, 5

),

weeks as (

    select
        model_weeks.*,
        cost_weeks.unpriced_requests,
        cost_weeks.cost_usd,
        cost_weeks.uncached_input_tokens,
        cost_weeks.cache_read_tokens,
        cost_weeks.cache_write_tokens,
        model_weeks.errors::double precision / model_weeks.requests as error_rate,
        cost_weeks.cost_usd / model_weeks.requests as cost_per_request_usd,
        sum(cost_weeks.cost_usd) over (partition by model_weeks.day, model_weeks.org_id) as org_cost_usd
    from model_weeks
    join cost_weeks using (day, org_id, service, provider, model)

),

-- cheaper_model: model A serves the same org's same service for less per request, with an error
-- rate no more than insight_similar_error_rate_points higher and a p95 latency no more than
-- insight_similar_latency_ratio times; the saving is what the expensive model's requests would
-- have cost at A's cost per request
cheaper_pairs as (

    select
        e.day,
        e.org_id,
        e.service,
        e.provider,
        e.model,
        a.provider as alternative_provider,
        a.model as alternative_model,
        e.requests,
        e.cost_per_request_usd,
        a.cost_per_request_usd as alternative_cost_per_request_usd,
        e.error_rate,
        a.error_rate as alternative_error_rate,
        e.latency_p95_ms,
        a.latency_p95_ms as alternative_latency_p95_ms,
        a.requests as alternative_requests,
        e.org_cost_usd,
        e.requests * (e.cost_per_request_usd - a.cost_per_request_usd) as weekly_savings_usd,
        -- how sure: the chance that A's true error rate is within the tolerance of E's
        marts.normal_cdf(
            (e.error_rate + {{ var('insight_similar_error_rate_points') }} - a.error_rate)
            / greatest(sqrt(e.error_rate * (1 - e.error_rate) / e.requests
                            + a.error_rate * (1 - a.error_rate) / a.requests), 1e-9)
        ) as confidence,
        row_number() over (
            partition by e.day, e.org_id, e.service, e.provider, e.model
            order by a.cost_per_request_usd, a.model
        ) as rank
    from weeks as e
    join weeks as a
        on a.day = e.day
       and a.org_id = e.org_id
       and a.service = e.service
       and (a.provider, a.model) <> (e.provider, e.model)
    where e.requests >= {{ min_requests }}
      and a.requests >= {{ min_requests }}
      and e.unpriced_requests = 0
      and a.unpriced_requests = 0
      and a.cost_per_request_usd <= (1 - {{ var('insight_cheaper_model_min_saving_share') }}) * e.cost_per_request_usd
      and a.error_rate <= e.error_rate + {{ var('insight_similar_error_rate_points') }}
      and a.latency_p95_ms <= {{ var('insight_similar_latency_ratio') }} * e.latency_p95_ms

),

cheaper_findings as (

    select
        'cheaper_model' as rule,
        org_id || '|' || service || '|' || provider || '|' || model as subject,
        day,
        org_id,
        'cost' as category,
        case when weekly_savings_usd >= 0.1 * org_cost_usd then 'warning' else 'info' end as severity,
        service || ': ' || alternative_model || ' could replace ' || model as title,
        'Over the 7 days to ' || day || ', ' || service || ' sent ' || requests || ' requests to ' || model
            || ' at $' || round(cost_per_request_usd::numeric, 6) || ' each (error rate '
            || round(100 * error_rate::numeric, 2) || ' %, p95 ' || round(latency_p95_ms::numeric) || ' ms), and '
            || alternative_requests || ' to ' || alternative_model || ' at $'
            || round(alternative_cost_per_request_usd::numeric, 6) || ' (error rate '
            || round(100 * alternative_error_rate::numeric, 2) || ' %, p95 '
            || round(alternative_latency_p95_ms::numeric) || ' ms).' as detail,
        'Route ' || service || ' traffic from ' || model || ' to ' || alternative_model
            || ' (try a share first and compare quality): about $' || round((weekly_savings_usd * 30 / 7)::numeric, 2)
            || ' a month saved.' as recommendation,
        weekly_savings_usd * 30 / 7 as monthly_savings_usd,
        null::double precision as at_risk_usd,
        requests as affected_requests,
        weekly_savings_usd / nullif(org_cost_usd, 0) as impact_share,
        confidence,
        jsonb_build_object(
            'requests', requests, 'cost_per_request_usd', cost_per_request_usd, 'error_rate', error_rate,
            'latency_p95_ms', latency_p95_ms, 'alternative_provider', alternative_provider,
            'alternative_model', alternative_model, 'alternative_requests', alternative_requests,
            'alternative_cost_per_request_usd', alternative_cost_per_request_usd,
            'alternative_error_rate', alternative_error_rate, 'alternative_latency_p95_ms', alternative_latency_p95_ms,
            'weekly_savings_usd', weekly_savings_usd, 'window_days', 7
        ) as evidence
    from cheaper_pairs
    where rank = 1

),

-- list prices today (an override first, else the catalog's base row), for what caching would save
list_prices as (

    select distinct on (provider, model) provider, model, usd_per_mtok_input, usd_per_mtok_cache_read
    from (
        select lower(provider) as provider, lower(model) as model, usd_per_mtok_input, usd_per_mtok_cache_read, 1 as pick
        from {{ source('reference', 'price_overrides') }}
        where valid_to is null
        union all
        select lower(m.provider), lower(m.model), c.usd_per_mtok_input, c.usd_per_mtok_cache_read, 2
        from {{ source('reference', 'model_matches') }} as m
        join {{ source('reference', 'catalog_prices') }} as c
            on c.provider_id = m.catalog_provider_id
           and c.model_id = m.catalog_model_id
        where c.valid_to is null and c.time_of_day_from is null and c.input_tokens_over is null
    ) as candidates
    order by provider, model, pick

),

-- prompt_caching: long prompts that are rarely read from the cache; the saving assumes
-- insight_cache_hit_share of the uncached prompt tokens would be cache reads
caching_candidates as (

    select
        weeks.*,
        list_prices.usd_per_mtok_input,
        list_prices.usd_per_mtok_cache_read,
        (uncached_input_tokens + cache_read_tokens + cache_write_tokens)::double precision / requests
            as prompt_tokens_per_request,
        cache_read_tokens::double precision
            / nullif(uncached_input_tokens + cache_read_tokens + cache_write_tokens, 0) as cache_read_share,
        uncached_input_tokens * {{ var('insight_cache_hit_share') }}
            * (list_prices.usd_per_mtok_input - list_prices.usd_per_mtok_cache_read) / 1e6 as weekly_savings_usd
    from weeks
    join list_prices
        on list_prices.provider = lower(weeks.provider)
       and list_prices.model = lower(weeks.model)
    where requests >= {{ min_requests }}
      and list_prices.usd_per_mtok_cache_read < list_prices.usd_per_mtok_input

),

caching_findings as (

    select
        'prompt_caching',
        org_id || '|' || service || '|' || provider || '|' || model,
        day,
        org_id,
        'cost',
        case when weekly_savings_usd >= 0.1 * org_cost_usd then 'warning' else 'info' end,
        service || ': cache the long prompts sent to ' || model,
        'Over the 7 days to ' || day || ', ' || requests || ' requests to ' || model || ' averaged '
            || round(prompt_tokens_per_request::numeric) || ' prompt tokens, of which '
            || round(100 * cache_read_share::numeric, 1) || ' % were read from the cache; cached tokens cost $'
            || usd_per_mtok_cache_read || ' per million instead of $' || usd_per_mtok_input || '.',
        'Put the stable part of the prompt (system prompt, documents, tool definitions) first and enable '
            || 'prompt caching: if ' || round(100 * {{ var('insight_cache_hit_share') }}) || ' % of it were read '
            || 'from the cache, about $' || round((weekly_savings_usd * 30 / 7)::numeric, 2) || ' a month saved.',
        weekly_savings_usd * 30 / 7,
        null::double precision,
        requests,
        weekly_savings_usd / nullif(org_cost_usd, 0),
        {{ var('insight_cache_hit_share') }}::double precision,
        jsonb_build_object(
            'requests', requests, 'prompt_tokens_per_request', prompt_tokens_per_request,
            'cache_read_share', cache_read_share, 'uncached_input_tokens', uncached_input_tokens,
            'usd_per_mtok_input', usd_per_mtok_input, 'usd_per_mtok_cache_read', usd_per_mtok_cache_read,
            'assumed_hit_share', {{ var('insight_cache_hit_share') }}, 'weekly_savings_usd', weekly_savings_usd,
            'window_days', 7
        )
    from caching_candidates
    where prompt_tokens_per_request >= {{ var('insight_long_prompt_tokens') }}
      and coalesce(cache_read_share, 0) < {{ var('insight_low_cache_share') }}

),

-- a day against the 7 days before it, per org, service and model: the regression rules
day_vs_baseline as (

    select
        d.day,
        d.org_id,
        d.service,
        d.provider,
        d.model,
        d.requests,
        d.errors,
        d.errors::double precision / d.requests as error_rate,
        d.latency_buckets,
        d.latency_counts,
        marts.histogram_quantile(d.latency_buckets, d.latency_counts, 0.95) as latency_p95_ms,
        sum(b.requests) as baseline_requests,
        sum(b.errors) as baseline_errors,
        marts.histogram_quantile(marts.array_concat_agg(b.latency_buckets),
                                 marts.array_concat_agg(b.latency_counts), 0.95) as baseline_latency_p95_ms
    from performance_days as d
    join performance_days as b
        on b.org_id = d.org_id
       and b.service = d.service
       and b.provider = d.provider
       and b.model = d.model
       and b.day between d.day - 7 and d.day - 1
    where d.requests >= {{ min_requests }}
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    having sum(b.requests) >= {{ min_requests }}

),

-- error_rate_regression: a binomial test of the day's errors against the baseline's pooled rate
-- (one error and one success added); at risk: the failures beyond that rate
error_regressions as (

    select
        day_vs_baseline.*,
        (baseline_errors + 1.0) / (baseline_requests + 2.0) as baseline_error_rate,
        errors - requests * (baseline_errors + 1.0) / (baseline_requests + 2.0) as excess_errors,
        (errors - requests * (baseline_errors + 1.0) / (baseline_requests + 2.0))
            / sqrt(requests * (baseline_errors + 1.0) / (baseline_requests + 2.0)
                   * (1 - (baseline_errors + 1.0) / (baseline_requests + 2.0))) as z
    from day_vs_baseline

),

error_findings as (

    select
        'error_rate_regression',
        org_id || '|' || service || '|' || provider || '|' || model,
        day,
        org_id,
        'performance',
        case when error_rate >= 0.1 then 'critical' else 'warning' end,
        service || ': ' || model || ' errors rose to ' || round(100 * error_rate::numeric, 1) || ' %',
        'On ' || day || ', ' || errors || ' of ' || requests || ' requests to ' || model || ' from ' || service
            || ' failed (' || round(100 * error_rate::numeric, 2) || ' %) against '
            || round(100 * baseline_error_rate::numeric, 2) || ' % over the 7 days before: '
            || round(excess_errors::numeric) || ' failures more than usual.',
        'Look at the error codes of ' || provider || '/' || model || ' in marts.fct_performance_hourly '
            || '(errors_by_code) for the hours it started; add retries with backoff for rate limits, or fail '
            || 'over to another model.',
        null::double precision,
        null::double precision,
        round(excess_errors)::bigint,
        excess_errors / requests,
        marts.normal_cdf(z),
        jsonb_build_object(
            'requests', requests, 'errors', errors, 'error_rate', error_rate,
            'baseline_requests', baseline_requests, 'baseline_errors', baseline_errors,
            'baseline_error_rate', baseline_error_rate, 'excess_errors', excess_errors, 'z', z,
            'baseline_days', 7
        )
    from error_regressions
    where error_rate - baseline_error_rate >= {{ var('insight_error_rate_rise') }}
      and z >= 3

),

-- latency_regression: the day's p95 against the baseline's; at risk: the requests slower than the
-- baseline's p95 beyond the 5 % that always are
latency_regressions as (

    select
        day_vs_baseline.*,
        (select coalesce(sum(n), 0) from unnest(latency_buckets, latency_counts) as u(b, n)
         where {{ bucket_value('b') }} > baseline_latency_p95_ms) as slow_requests,
        (select coalesce(sum(n), 0) from unnest(latency_buckets, latency_counts) as u(b, n)) as timed_requests
    from day_vs_baseline
    where latency_p95_ms >= (1 + {{ var('insight_latency_rise') }}) * baseline_latency_p95_ms

),

latency_findings as (

    select
        'latency_regression',
        org_id || '|' || service || '|' || provider || '|' || model,
        day,
        org_id,
        'performance',
        case when latency_p95_ms >= 2 * baseline_latency_p95_ms then 'critical' else 'warning' end,
        service || ': ' || model || ' p95 latency up ' || round((100 * (latency_p95_ms / baseline_latency_p95_ms - 1))::numeric) || ' %',
        'On ' || day || ', the p95 latency of ' || model || ' for ' || service || ' was '
            || round(latency_p95_ms::numeric) || ' ms against ' || round(baseline_latency_p95_ms::numeric)
            || ' ms over the 7 days before; ' || slow_requests || ' of ' || timed_requests
            || ' requests were slower than that usual p95.',
        'Check the provider''s status and the prompt and output sizes of ' || service || ' on ' || day
            || '; set a timeout and a fallback model for requests that exceed ' || round(baseline_latency_p95_ms::numeric) || ' ms.',
        null::double precision,
        null::double precision,
        greatest(round(slow_requests - 0.05 * timed_requests), 0)::bigint,
        greatest(slow_requests - 0.05 * timed_requests, 0) / greatest(timed_requests, 1),
        marts.normal_cdf((slow_requests::double precision / greatest(timed_requests, 1) - 0.05)
                         / sqrt(0.05 * 0.95 / greatest(timed_requests, 1))),
        jsonb_build_object(
            'requests', requests, 'latency_p95_ms', latency_p95_ms, 'baseline_latency_p95_ms', baseline_latency_p95_ms,
            'baseline_requests', baseline_requests, 'slow_requests', slow_requests, 'timed_requests', timed_requests,
            'baseline_days', 7
        )
    from latency_regressions

),

-- budget_burn: per org and local day, the month to date and where the burn rate (the last 7 complete
-- days' mean, trailing_daily_rate) takes it by the month's end (the same arithmetic as
-- fct_org_monthly_spend); at risk: the projected overrun
local_days as (

    select org_id, day_local, date_trunc('month', day_local)::date as month, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_daily_local') }}
    group by 1, 2, 3

),

budgets as (

    select
        months.org_id,
        months.month,
        coalesce(own.budget_usd, every_month.budget_usd) as budget_usd
    from (select distinct org_id, month from local_days) as months
    left join {{ source('reference', 'org_budgets') }} as own
        on own.org_id = months.org_id and own.month = months.month
    left join {{ source('reference', 'org_budgets') }} as every_month
        on every_month.org_id = months.org_id and every_month.month is null

),

burn as (

    select
        local_days.org_id,
        local_days.day_local as day,
        budgets.budget_usd,
        sum(local_days.cost_usd) over (partition by local_days.org_id, local_days.month order by local_days.day_local)
            as month_to_date_usd,
        local_days.day_local - greatest(local_days.month, first_day.first_day) + 1 as days_observed,
        local_days.day_local - local_days.month + 1 as days_elapsed,
        (local_days.month + interval '1 month')::date - local_days.month as days_in_month,
        first_day.first_day
    from local_days
    join budgets using (org_id, month)
    join (select org_id, min(day_local) as first_day from local_days group by 1) as first_day using (org_id)
    where budgets.budget_usd > 0

),

burn_rates as (

    select
        burn.*,
        coalesce({{ trailing_daily_rate('local_days', 'burn.org_id', 'burn.day', 'burn.first_day') }},
                 month_to_date_usd / days_observed) as rate_usd_per_day
    from burn

),

burn_forecasts as (

    select
        burn_rates.*,
        month_to_date_usd + rate_usd_per_day * (days_in_month - days_elapsed) as forecast_usd
    from burn_rates

),

budget_findings as (

    select
        'budget_burn',
        org_id,
        day,
        org_id,
        'cost',
        case when month_to_date_usd >= budget_usd then 'critical' else 'warning' end,
        case when month_to_date_usd >= budget_usd then 'Monthly budget spent'
             else 'On course to exceed the monthly budget' end,
        'By ' || day || ', ' || org_id || ' had spent $' || round(month_to_date_usd::numeric, 2) || ' of its $'
            || budget_usd || ' budget; at $' || round(rate_usd_per_day::numeric, 2)
            || ' a day the month ends near $' || round(forecast_usd::numeric, 2) || '.',
        'Cut spend by about $' || round(((forecast_usd - budget_usd) / greatest(days_in_month - days_elapsed, 1))::numeric, 2)
            || ' a day for the rest of the month (see the cheaper_model and prompt_caching insights), or raise '
            || 'the budget in reference/org_budgets.csv.',
        null::double precision,
        forecast_usd - budget_usd,
        null::bigint,
        (forecast_usd - budget_usd) / budget_usd,
        days_elapsed::double precision / days_in_month,
        jsonb_build_object(
            'budget_usd', budget_usd, 'month_to_date_usd', month_to_date_usd, 'days_observed', days_observed,
            'days_elapsed', days_elapsed, 'days_in_month', days_in_month, 'forecast_usd', forecast_usd
        )
    from burn_forecasts
    where forecast_usd > budget_usd

),

-- unpriced_model: requests no price covers, so the cost marts leave them out
unpriced as (

    select
        cost_days.day,
        cost_days.org_id,
        cost_days.provider,
        cost_days.model,
        sum(cost_days.unpriced_requests)::bigint as unpriced_requests,
        sum(cost_days.requests)::bigint as requests,
        sum(cost_days.uncached_input_tokens + cost_days.cache_read_tokens + cost_days.cache_write_tokens)::bigint as input_tokens,
        sum(cost_days.output_tokens)::bigint as output_tokens,
        min(org_days.requests) as org_requests
    from cost_days
    join org_days using (day, org_id)
    group by 1, 2, 3, 4
    having sum(cost_days.unpriced_requests) > 0

),

unpriced_findings as (

    select
        'unpriced_model',
        org_id || '|' || provider || '|' || model,
        day,
        org_id,
        'cost',
        'warning',
        unpriced_requests || ' requests to unpriced model ' || provider || '/' || model,
        'No catalog or override price covers ' || provider || '/' || model || ' on ' || day
            || ', so these requests have no cost in the cost marts (' || input_tokens || ' input and '
            || output_tokens || ' output tokens).',
        'Add a line for ' || provider || ',' || model
            || ' to reference/price_overrides.csv (or fix the model name at the source); the affected days '
            || 'are restated automatically.',
        null::double precision,
        null::double precision,
        unpriced_requests,
        unpriced_requests::double precision / org_requests,
        1.0::double precision,
        jsonb_build_object('unpriced_requests', unpriced_requests, 'requests', requests,
                           'input_tokens', input_tokens, 'output_tokens', output_tokens)
    from unpriced

),

-- anomaly: the day's hours that fct_anomalies_hourly flagged, per org, model and metric; the category
-- follows the metric (requests: usage, cost: cost, error rate: quality, latency: performance)
anomaly_days as (

    select
        (hour_utc at time zone 'UTC')::date as day,
        org_id,
        provider,
        model,
        metric,
        count(*) as hours,
        max(abs(score)) as worst_score,
        (array_agg(hour_utc order by abs(score) desc))[1] as worst_hour,
        (array_agg(observed order by abs(score) desc))[1] as observed,
        (array_agg(expected order by abs(score) desc))[1] as expected,
        (array_agg(direction order by abs(score) desc))[1] as direction,
        sum(requests)::bigint as requests,
        bool_or(severity = 'critical') as critical
    from {{ ref('fct_anomalies_hourly') }}
    group by 1, 2, 3, 4, 5

),

anomaly_findings as (

    select
        'anomaly',
        org_id || '|' || provider || '|' || model || '|' || metric,
        day,
        org_id,
        case metric when 'requests' then 'usage' when 'cost_usd' then 'cost'
                    when 'error_rate' then 'quality' else 'performance' end,
        case when critical then 'critical' else 'warning' end,
        model || ' ' || replace(metric, '_', ' ') || ' ' || direction || ' in ' || hours || ' hour'
            || case when hours > 1 then 's' else '' end,
        'Worst at ' || to_char(worst_hour at time zone 'UTC', 'YYYY-MM-DD HH24:00') || ' UTC: '
            || round(observed::numeric, 4) || ' against ' || round(expected::numeric, 4)
            || ' expected for that hour of the week (score ' || round(worst_score::numeric, 1) || ').',
        'See marts.fct_anomalies_hourly for ' || org_id || ' and ' || model || ' on ' || day
            || ', and the error codes and latency of those hours in marts.fct_performance_hourly.',
        null::double precision,
        null::double precision,
        anomaly_days.requests,
        anomaly_days.requests::double precision / nullif(org_days.requests, 0),
        -- a score of s standard errors: one-sided normal probability that it is no accident
        marts.normal_cdf(worst_score),
        jsonb_build_object('metric', metric, 'hours', hours, 'worst_hour', worst_hour, 'observed', observed,
                           'expected', expected, 'worst_score', worst_score, 'direction', direction)
    from anomaly_days
    left join org_days using (day, org_id)

),

findings as (

    select * from cheaper_findings
    union all select * from anomaly_findings
    union all select * from caching_findings
    union all select * from error_findings
    union all select * from latency_findings
    union all select * from budget_findings
    union all select * from unpriced_findings

),

raised as (

    select
        findings.*,
        case when previous.subject is null then 'new' else 'ongoing' end as status
    from findings
    left join findings as previous
        on previous.rule = findings.rule
       and previous.subject = findings.subject
       and previous.day = findings.day - 1

),

-- a finding raised one day and not the next is resolved on that next day (if the warehouse has it)
resolved as (

    select
        findings.rule,
        findings.subject,
        findings.day + 1 as day,
        findings.org_id,
        findings.category,
        'info' as severity,
        'Resolved: ' || findings.title as title,
        'Raised until ' || findings.day || ', no longer seen on ' || (findings.day + 1) || '. Last seen: '
            || findings.detail as detail,
        'None.' as recommendation,
        null::double precision as monthly_savings_usd,
        null::double precision as at_risk_usd,
        null::bigint as affected_requests,
        0::double precision as impact_share,
        findings.confidence,
        findings.evidence,
        'resolved' as status
    from findings
    left join findings as next_day
        on next_day.rule = findings.rule
       and next_day.subject = findings.subject
       and next_day.day = findings.day + 1
    where next_day.subject is null
      and findings.day + 1 <= (select max(day) from days)

),

final as (

    select * from raised
    union all
    select * from resolved

)

select
    md5(rule || '|' || subject || '|' || day || '|' || status) as insight_id,
    day,
    org_id,
    category,
    rule,
    subject,
    severity,
    status,
    title,
    detail,
    recommendation,
    round(monthly_savings_usd::numeric, 6) as monthly_savings_usd,
    round(at_risk_usd::numeric, 6) as at_risk_usd,
    affected_requests,
    least(100, greatest(0, round(100 * impact_share)))::int as impact_score,
    least(100, greatest(0, round(100 * confidence)))::int as confidence,
    evidence
from final
