{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Spend per UTC day, org and metadata tag (the keys listed in the dbt var cost_tag_keys).

with

events as (

    select * from {{ ref('fct_event_costs') }}

),

scoped as (

    select events.*
    from events
    {% if is_incremental() %}
    where {{ within_affected_days('event_hour') }}
    {% endif %}

),

final as (

    select
        scoped.day_utc,
        scoped.org_id,
        tag.key as tag_key,
        tag.value as tag_value,
        count(*) as requests,
        coalesce(sum(scoped.cost_usd), 0) as cost_usd
    from scoped
    cross join lateral jsonb_each_text(coalesce(scoped.tags, '{}'::jsonb)) as tag
    group by 1, 2, 3, 4

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
