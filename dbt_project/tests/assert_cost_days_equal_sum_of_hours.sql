{{ config(meta={"dagster": {"ref": {"name": "fct_cost_daily"}}}) }}

-- Reconciliation: each org's cost and requests per UTC day, and per day in its own time zone, equal
-- the sum of its hours. Days from the second after the oldest hour kept: retention deletes hours
-- (WAREHOUSE_HOURLY_RETENTION_DAYS) but keeps days, and a local day reaches 14 hours either side.
with hourly as (
    select hour_utc, org_id, sum(requests) as requests, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_hourly') }}
    group by 1, 2
),
kept as (
    select (min(hour_utc) at time zone 'UTC')::date + 2 as first_whole_day from hourly
),
by_utc_day as (
    select (hour_utc at time zone 'UTC')::date as day, org_id, sum(requests) as requests, sum(cost_usd) as cost_usd
    from hourly
    group by 1, 2
),
utc_daily as (
    select day_utc as day, org_id, sum(requests) as requests, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_daily') }}
    group by 1, 2
),
by_local_day as (
    select (hourly.hour_utc at time zone coalesce(zones.time_zone, '{{ var("default_org_time_zone") }}'))::date
               as day,
           hourly.org_id, sum(requests) as requests, sum(cost_usd) as cost_usd
    from hourly
    left join {{ source('reference', 'orgs') }} as zones on zones.org_id = hourly.org_id
    group by 1, 2
),
local_daily as (
    select day_local as day, org_id, sum(requests) as requests, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_daily_local') }}
    group by 1, 2
)
select 'utc' as calendar, day, org_id, by_utc_day.requests as hourly_requests, utc_daily.requests as daily_requests,
       by_utc_day.cost_usd as hourly_cost_usd, utc_daily.cost_usd as daily_cost_usd
from by_utc_day
full outer join utc_daily using (day, org_id)
where day >= (select first_whole_day from kept)
  and (by_utc_day.requests is distinct from utc_daily.requests
       or by_utc_day.cost_usd is distinct from utc_daily.cost_usd)
union all
select 'local' as calendar, day, org_id, by_local_day.requests, local_daily.requests,
       by_local_day.cost_usd, local_daily.cost_usd
from by_local_day
full outer join local_daily using (day, org_id)
where day >= (select first_whole_day from kept)
  and (by_local_day.requests is distinct from local_daily.requests
       or by_local_day.cost_usd is distinct from local_daily.cost_usd)
