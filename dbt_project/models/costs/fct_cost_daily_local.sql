{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'day_local'],
        indexes=[{'columns': ['org_id', 'day_local']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Daily cost in each org's own time zone (reference/orgs.csv), built from the UTC hourly grain: an
-- hour belongs to the local day its start falls on, so a day when clocks go forward has 23 hours and
-- one when they go back has 25 (hours_in_day). Exact for zones whose offset is whole hours.

with

hourly as (

    select * from {{ ref('fct_cost_hourly') }}

),

zones as (

    select org_id, time_zone from {{ source('reference', 'orgs') }}

),

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),

affected_days as (

    select distinct
        hourly.org_id,
        (hourly.hour_utc at time zone coalesce(zones.time_zone, '{{ var("default_org_time_zone") }}'))::date
            as day_local
    from hourly
    left join zones on zones.org_id = hourly.org_id
    where hourly.hour_utc in (select event_hour from affected_hours)

),
{% endif %}

located as (

    select
        hourly.*,
        coalesce(zones.time_zone, '{{ var("default_org_time_zone") }}') as time_zone,
        (hourly.hour_utc at time zone coalesce(zones.time_zone, '{{ var("default_org_time_zone") }}'))::date
            as day_local
    from hourly
    left join zones on zones.org_id = hourly.org_id
    {% if is_incremental() %}
    -- a local day reaches at most 14 hours either side of its UTC day
    where hourly.hour_utc >= (select min(event_hour) from affected_hours) - interval '2 days'
      and hourly.hour_utc < (select max(event_hour) from affected_hours) + interval '2 days'
    {% endif %}

),

scoped as (

    select located.*
    from located
    {% if is_incremental() %}
    join affected_days
        on affected_days.org_id = located.org_id
       and affected_days.day_local = located.day_local
    {% endif %}

),

final as (

    select
        org_id,
        day_local,
        time_zone,
        (extract(epoch from ((day_local + 1)::timestamp at time zone time_zone)
                            - (day_local::timestamp at time zone time_zone)) / 3600)::int as hours_in_day,
        team,
        user_id,
        service,
        provider,
        model,
        count(distinct hour_utc) as hours_with_usage,
        {{ cost_measures() }}
    from scoped
    group by org_id, day_local, time_zone, team, user_id, service, provider, model

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
