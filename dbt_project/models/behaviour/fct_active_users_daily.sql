{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['org_id', 'day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Daily, weekly and monthly active users per org and UTC day (users active on the day, in the 7 days
-- and in the 30 days ending with it) and week-over-week growth of weekly actives. A day's activity
-- changes the weekly figure of the 6 days after it and the monthly one of the 29 after it: an
-- incremental run recomputes those too.

with

activity as (

    select * from {{ ref('fct_user_activity_daily') }}

),

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),

affected_days as (

    {{ affected_utc_days() }}

),
{% endif %}

days as (

    -- the days to compute, each org from its first active day to its last
    select org_id, day::date as day_utc
    from (
        select org_id, min(day_utc) as first_day, max(day_utc) as last_day
        from activity
        group by 1
    ) as spans,
    generate_series(first_day, last_day, interval '1 day') as day
    {% if is_incremental() %}
    where day::date >= (select min(day_utc) from affected_days) - 7
      and day::date <= (select max(day_utc) from affected_days) + 29
    {% endif %}

),

counted as (

    select
        days.org_id,
        days.day_utc,
        count(distinct activity.user_id) filter (where activity.day_utc = days.day_utc) as daily_active_users,
        count(distinct activity.user_id) filter (where activity.day_utc > days.day_utc - 7) as weekly_active_users,
        count(distinct activity.user_id) as monthly_active_users
    from days
    left join activity
        on activity.org_id = days.org_id
       and activity.day_utc > days.day_utc - 30
       and activity.day_utc <= days.day_utc
    group by 1, 2

),

final as (

    select
        counted.*,
        week_ago.weekly_active_users as weekly_active_users_week_ago,
        counted.weekly_active_users::double precision / nullif(week_ago.weekly_active_users, 0) - 1
            as weekly_active_users_growth
    from counted
    left join counted as week_ago
        on week_ago.org_id = counted.org_id
       and week_ago.day_utc = counted.day_utc - 7
    {% if is_incremental() %}
    where counted.day_utc >= (select min(day_utc) from affected_days)
    {% endif %}

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
