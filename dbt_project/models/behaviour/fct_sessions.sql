{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_id',
        indexes=[{'columns': ['session_id']}, {'columns': ['org_id', 'started_at']}, {'columns': ['built_at']}],
        pre_hook="set enable_nestloop = off",
        post_hook="reset enable_nestloop",
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- One row per session: who, when, how long, how much, with which tools and models. An incremental
-- run recomputes every session with an event in the refreshed hours, from all of its events within a
-- day either side (a longer session is cut there). Events without a session_id are not sessions.
-- The window is written in as literals and nested loops are off: with bounds from subqueries, and
-- statistics from before a rebuild, the planner looped over a day of events per session (234-697 s
-- for one hour on 10M events, against under a second for the full build).
{%- if is_incremental() %}{% set bounds = affected_bounds() %}{% endif %}

with

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),

touched as (

    select distinct session_id
    from {{ ref('stg_usage__events') }}
    where {{ within_affected_hours() }}
      and session_id is not null

),
{% endif %}

events as (

    select events.*
    from {{ ref('stg_usage__events') }} as events
    where session_id is not null
    {% if is_incremental() %}
      and event_time >= '{{ bounds.first_hour }}'::timestamptz - interval '1 day'
      and event_time < '{{ bounds.last_hour }}'::timestamptz + interval '25 hours'
      and session_id in (select session_id from touched)
    {% endif %}

),

costs as (

    select event_id, cost_usd, is_priced
    from {{ ref('fct_event_costs') }}
    {% if is_incremental() %}
    where event_hour >= '{{ bounds.first_hour }}'::timestamptz - interval '1 day'
      and event_hour < '{{ bounds.last_hour }}'::timestamptz + interval '25 hours'
    {% endif %}

),

final as (

    select
        events.session_id,
        min(events.org_id) as org_id,
        min(events.user_id) as user_id,
        min(coalesce(events.service, 'unknown')) as service,
        min(events.event_time) as started_at,
        max(events.event_time) as ended_at,
        extract(epoch from max(events.event_time) - min(events.event_time)) as duration_seconds,
        count(*) as events,
        count(*) filter (where events.is_error) as errors,
        sum(events.input_tokens)::bigint as input_tokens,
        sum(events.output_tokens)::bigint as output_tokens,
        sum(costs.cost_usd) as cost_usd,
        count(*) filter (where not coalesce(costs.is_priced, false)) as unpriced_events,
        coalesce(array_agg(distinct events.tool order by events.tool) filter (where events.tool is not null), '{}')
            as tools_used,
        array_agg(distinct events.model order by events.model) as models_used
    from events
    left join costs on costs.event_id = events.event_id
    group by events.session_id

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
