{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Experiments and variants named in event metadata (vars experiment_key, variant_key): requests,
-- users, error rate, cost per request and p95 latency per variant; each variant against the control
-- (var control_variant) with two-sided p-values (error rate: two-proportion z-test; cost per request:
-- Welch's test, normal approximation); and a sample-ratio-mismatch check of users per variant against
-- an equal split (chi-square). Read from the daily rollup fct_experiment_users_daily, over the last
-- var experiment_window_days days it holds (30, the raw window), so a rebuild costs users x days, not events.

with

user_days as (

    select *
    from {{ ref('fct_experiment_users_daily') }}
    where day_utc > (select max(day_utc) from {{ ref('fct_experiment_users_daily') }})
                    - {{ var('experiment_window_days') }}

),

totals as (

    select
        experiment,
        variant,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(distinct user_id) as users,
        sum(requests)::bigint as requests,
        sum(errors)::bigint as errors,
        sum(errors)::double precision / sum(requests) as error_rate,
        sum(priced_requests)::bigint as priced_requests,
        sum(cost_usd) as cost_usd,
        (sum(cost_usd) / nullif(sum(priced_requests), 0))::double precision as cost_per_request,
        -- the sample variance from sums (numeric, so exact): (sum x^2 - (sum x)^2 / n) / (n - 1)
        ((sum(cost_usd_squares) - sum(cost_usd) ^ 2 / nullif(sum(priced_requests), 0))
         / nullif(sum(priced_requests) - 1, 0))::double precision as cost_per_request_variance
    from user_days
    group by 1, 2

),

-- histogram_quantile adds up repeated buckets, so the users' histograms go in unnested: array_agg
-- grows in place, where laying the arrays end to end (array_concat_agg) copies them once per row
variants as (

    select totals.*, latency.latency_p95_ms
    from totals
    left join (
        select experiment, variant, marts.histogram_quantile(array_agg(bucket), array_agg(n), 0.95) as latency_p95_ms
        from user_days, unnest(latency_buckets, latency_counts) as histogram(bucket, n)
        group by 1, 2
    ) as latency using (experiment, variant)

),

sample_ratio as (

    select
        experiment,
        srm_chi_square,
        case when variant_count > 1 then marts.chi_square_p_value(srm_chi_square, (variant_count - 1)::int) end
            as srm_p_value
    from (
    select
        experiment,
        count(*) as variant_count,
        sum((users - expected) ^ 2 / expected) as srm_chi_square
    from (
        select experiment, users, sum(users) over (partition by experiment)::double precision
                                  / count(*) over (partition by experiment) as expected
        from variants
    ) as split
    group by 1
    ) as tested

),

compared as (

    select
        variants.*,
        variants.variant = '{{ var("control_variant") }}' as is_control,
        variants.error_rate - control.error_rate as error_rate_diff,
        sqrt(pooled.rate * (1 - pooled.rate) * (1.0 / variants.requests + 1.0 / control.requests))
            as error_rate_se,
        variants.cost_per_request - control.cost_per_request as cost_per_request_diff,
        sqrt(variants.cost_per_request_variance / nullif(variants.priced_requests, 0)
             + control.cost_per_request_variance / nullif(control.priced_requests, 0)) as cost_per_request_se
    from variants
    left join variants as control
        on control.experiment = variants.experiment
       and control.variant = '{{ var("control_variant") }}'
       and variants.variant <> '{{ var("control_variant") }}'
    left join lateral (
        select (variants.errors + control.errors)::double precision / (variants.requests + control.requests) as rate
    ) as pooled on true

),

final as (

    select
        compared.experiment,
        compared.variant,
        compared.is_control,
        compared.first_seen_at,
        compared.last_seen_at,
        compared.users,
        compared.requests,
        compared.errors,
        compared.error_rate,
        compared.priced_requests,
        compared.cost_usd,
        compared.cost_per_request,
        compared.latency_p95_ms,
        compared.error_rate_diff,
        2 * (1 - marts.normal_cdf(abs(compared.error_rate_diff) / nullif(compared.error_rate_se, 0)))
            as error_rate_p_value,
        compared.cost_per_request_diff,
        2 * (1 - marts.normal_cdf(abs(compared.cost_per_request_diff) / nullif(compared.cost_per_request_se, 0)))
            as cost_per_request_p_value,
        sample_ratio.srm_chi_square,
        sample_ratio.srm_p_value,
        sample_ratio.srm_p_value < {{ var("srm_p_value") }} as sample_ratio_mismatch
    from compared
    join sample_ratio using (experiment)

)

select * from final
