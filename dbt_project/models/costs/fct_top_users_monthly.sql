{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Spend per user and month (org's time zone), ranked within the org: rank 1 spends most.

with

monthly as (

    select
        org_id,
        date_trunc('month', day_local)::date as month_local,
        user_id,
        team,
        sum(requests)::bigint as requests,
        sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_daily_local') }}
    group by 1, 2, 3, 4

)

select
    monthly.*,
    cost_usd / nullif(sum(cost_usd) over (partition by org_id, month_local), 0) as share_of_org_cost,
    rank() over (partition by org_id, month_local order by cost_usd desc) as cost_rank
from monthly
