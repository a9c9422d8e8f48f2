{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['built_at']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Funnels declared in the dbt var `funnels`: per UTC day (of the session's first step), org, funnel
-- and step, the sessions that reached the step, i.e. had events matching steps 1..k in that order.
-- A run recomputes its days and the day before each (a session's later steps may arrive a day on).

{%- set allowed = ['event_type', 'tool', 'action', 'service', 'model'] %}
{%- if is_incremental() %}{% set bounds = affected_bounds() %}{% endif %}

with

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),

affected_days as (

    select day_utc from ({{ affected_utc_days() }}) as days
    union
    select day_utc - 1 from ({{ affected_utc_days() }}) as days

),
{% endif %}

events as (

    select session_id, org_id, event_time, event_type, tool, action, service, model
    from {{ ref('stg_usage__events') }}
    where session_id is not null
    {% if is_incremental() %}
      and event_time >= ('{{ bounds.first_day }}'::date - 1)::timestamp at time zone 'UTC'
      and event_time < ('{{ bounds.last_day }}'::date + 2)::timestamp at time zone 'UTC'
    {% endif %}

),

{% for funnel, steps in var('funnels').items() %}
{% for step in steps %}
{%- if step.field not in allowed %}
    {{ exceptions.raise_compiler_error("funnel " ~ funnel ~ " step " ~ loop.index ~ ": field must be one of " ~ allowed | join(', ') ~ ", not " ~ step.field) }}
{%- endif %}
{{ funnel }}_step_{{ loop.index }} as (

    {% if loop.first %}
    select session_id, min(org_id) as org_id, min(event_time) as reached_at, min(event_time) as started_at
    from events
    where {{ step.field }} = '{{ step.value | replace("'", "''") }}'
    group by session_id
    {% else %}
    select previous.session_id, previous.org_id, min(events.event_time) as reached_at, previous.started_at
    from {{ funnel }}_step_{{ loop.index - 1 }} as previous
    join events
      on events.session_id = previous.session_id
     and events.event_time > previous.reached_at
     and events.{{ step.field }} = '{{ step.value | replace("'", "''") }}'
    group by previous.session_id, previous.org_id, previous.started_at
    {% endif %}

),
{% endfor %}
{% endfor %}

reached as (

    {% for funnel, steps in var('funnels').items() %}
    {% set outer_last = loop.last %}
    {% for step in steps %}
    select
        (started_at at time zone 'UTC')::date as day_utc,
        org_id,
        '{{ funnel }}' as funnel,
        {{ loop.index }} as step,
        '{{ step.field }} = {{ step.value }}' as step_name,
        count(*) as sessions
    from {{ funnel }}_step_{{ loop.index }}
    group by 1, 2
    {% if not (loop.last and outer_last) %}union all{% endif %}
    {% endfor %}
    {% endfor %}

),

steps as (

    {% for funnel, steps in var('funnels').items() %}
    {% set outer_last = loop.last %}
    {% for step in steps %}
    select '{{ funnel }}' as funnel, {{ loop.index }} as step, '{{ step.field }} = {{ step.value }}' as step_name
    {% if not (loop.last and outer_last) %}union all{% endif %}
    {% endfor %}
    {% endfor %}

),

starts as (

    select day_utc, org_id, funnel, sessions as started
    from reached
    where step = 1

),

final as (

    select
        starts.day_utc,
        starts.org_id,
        steps.funnel,
        steps.step,
        steps.step_name,
        coalesce(reached.sessions, 0) as sessions,
        coalesce(reached.sessions, 0)::double precision / starts.started as conversion_from_start,
        coalesce(reached.sessions, 0)::double precision / nullif(previous.sessions, 0) as conversion_from_previous
    from starts
    join steps on steps.funnel = starts.funnel
    left join reached
        on reached.day_utc = starts.day_utc and reached.org_id = starts.org_id
       and reached.funnel = steps.funnel and reached.step = steps.step
    left join reached as previous
        on previous.day_utc = starts.day_utc and previous.org_id = starts.org_id
       and previous.funnel = steps.funnel and previous.step = steps.step - 1
    {% if is_incremental() %}
    where starts.day_utc in (select day_utc from affected_days)
    {% endif %}

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
