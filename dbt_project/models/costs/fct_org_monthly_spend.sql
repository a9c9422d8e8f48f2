{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Spend per org and month (in the org's own time zone) against its budget: month to date, burn
-- rate, a forecast of the month's end, the day the budget is (or, at the current burn rate, will
-- be) crossed, and the days spend crossed 50, 80 and 100 % of the budget.
-- The month is observed from the org's first day with usage (the 1st, once history is complete) up
-- to as_of_day, its latest day with usage capped at month end. The burn rate is the mean daily spend
-- of the complete days before as_of_day (trailing_daily_rate: the last 7, across the month's start,
-- so the 1st is not forecast from a partial day), and the forecast adds it for every day left in the
-- month. A closed month keeps its final figures; each month also shows the one before it.

with

daily as (

    select org_id, day_local, date_trunc('month', day_local)::date as month_local, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_daily_local') }}
    group by 1, 2, 3

),

cumulative as (

    select
        daily.*,
        sum(cost_usd) over (partition by org_id, month_local order by day_local) as month_to_date_usd
    from daily

),

months as (

    select
        org_id,
        month_local,
        sum(cost_usd) as month_to_date_usd,
        ((month_local + interval '1 month')::date - month_local) as days_in_month
    from daily
    group by org_id, month_local

),

latest as (

    select org_id, min(day_local) as first_day, max(day_local) as latest_day from daily group by org_id

),

budgets as (

    select
        months.org_id,
        months.month_local,
        coalesce(own.budget_usd, every_month.budget_usd) as budget_usd
    from months
    left join {{ source('reference', 'org_budgets') }} as own
        on own.org_id = months.org_id and own.month = months.month_local
    left join {{ source('reference', 'org_budgets') }} as every_month
        on every_month.org_id = months.org_id and every_month.month is null

),

crossings as (

    select
        cumulative.org_id,
        cumulative.month_local,
        min(day_local) filter (where month_to_date_usd >= 0.5 * budgets.budget_usd) as crossed_50_pct_on,
        min(day_local) filter (where month_to_date_usd >= 0.8 * budgets.budget_usd) as crossed_80_pct_on,
        min(day_local) filter (where month_to_date_usd >= budgets.budget_usd) as crossed_100_pct_on
    from cumulative
    join budgets on budgets.org_id = cumulative.org_id and budgets.month_local = cumulative.month_local
    group by 1, 2

),

observed as (

    select
        months.*,
        greatest(latest.first_day, months.month_local) as observed_from,
        least(latest.latest_day, (months.month_local + interval '1 month' - interval '1 day')::date) as as_of_day
    from months
    join latest on latest.org_id = months.org_id

),

rates as (

    select
        observed.*,
        as_of_day - month_local + 1 as days_elapsed,
        as_of_day - observed_from + 1 as days_observed,
        round(coalesce({{ trailing_daily_rate('daily', 'observed.org_id', 'observed.as_of_day', 'latest.first_day') }},
                       month_to_date_usd / (as_of_day - observed_from + 1)), 6) as burn_rate_usd_per_day,
        latest.latest_day > (observed.month_local + interval '1 month' - interval '1 day')::date as is_month_closed,
        lag(observed.month_to_date_usd) over (partition by observed.org_id order by observed.month_local)
            as previous_month_usd_unchecked,
        lag(observed.month_local) over (partition by observed.org_id order by observed.month_local) as previous_month
    from observed
    join latest on latest.org_id = observed.org_id

),

final as (

    select
        rates.org_id,
        rates.month_local,
        rates.as_of_day,
        rates.days_elapsed,
        rates.days_observed,
        rates.days_in_month,
        rates.month_to_date_usd,
        budgets.budget_usd,
        rates.burn_rate_usd_per_day,
        round(rates.month_to_date_usd + rates.burn_rate_usd_per_day * (rates.days_in_month - rates.days_elapsed), 6)
            as forecast_month_end_usd,
        round(rates.month_to_date_usd / nullif(budgets.budget_usd, 0), 6) as budget_used_share,
        case
            when crossings.crossed_100_pct_on is not null then crossings.crossed_100_pct_on
            when rates.burn_rate_usd_per_day > 0
                 and rates.as_of_day + ceil((budgets.budget_usd - rates.month_to_date_usd)
                                             / rates.burn_rate_usd_per_day)::int
                     < rates.month_local + rates.days_in_month
                then rates.as_of_day + ceil((budgets.budget_usd - rates.month_to_date_usd)
                                            / rates.burn_rate_usd_per_day)::int
        end as budget_crossing_day,
        crossings.crossed_100_pct_on is null as budget_crossing_is_projected,
        crossings.crossed_50_pct_on,
        crossings.crossed_80_pct_on,
        crossings.crossed_100_pct_on,
        rates.is_month_closed,
        -- the month before's final spend, beside this one (null when the org had no spend then)
        case when rates.previous_month = (rates.month_local - interval '1 month')::date
             then rates.previous_month_usd_unchecked end as previous_month_usd
    from rates
    left join budgets on budgets.org_id = rates.org_id and budgets.month_local = rates.month_local
    left join crossings on crossings.org_id = rates.org_id and crossings.month_local = rates.month_local

)

select * from final
