{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Spend per metadata tag and UTC month, ranked within org and tag key: rank 1 spends most.

with

monthly as (

    select
        org_id,
        date_trunc('month', day_utc)::date as month_utc,
        tag_key,
        tag_value,
        sum(requests)::bigint as requests,
        sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_by_tag_daily') }}
    group by 1, 2, 3, 4

)

select
    monthly.*,
    rank() over (partition by org_id, month_utc, tag_key order by cost_usd desc) as cost_rank
from monthly
