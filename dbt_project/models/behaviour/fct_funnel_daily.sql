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

    -- only the events that match some step: one sort of these per run, no join (a join of each step on
    -- the events planned as a nested loop on 10M events and ran for minutes)
    select
        session_id, org_id, event_time
        {%- for funnel, steps in var('funnels').items() %}
        {%- for step in steps %}
        {%- if step.field not in allowed %}
        {{ exceptions.raise_compiler_error("funnel " ~ funnel ~ " step " ~ loop.index ~ ": field must be one of " ~ allowed | join(', ') ~ ", not " ~ step.field) }}
        {%- endif %},
        coalesce({{ step.field }} = '{{ step.value | replace("'", "''") }}', false) as {{ funnel }}_matches_{{ loop.index }}
        {%- endfor %}
        {%- endfor %}
    from {{ ref('stg_usage__events') }}
    where session_id is not null
      and (
        {%- for funnel, steps in var('funnels').items() %}{% set outer_first = loop.first %}
        {%- for step in steps %}
        {{ '' if loop.first and outer_first else 'or ' }}{{ step.field }} = '{{ step.value | replace("'", "''") }}'
        {%- endfor %}
        {%- endfor %}
      )
    {% if is_incremental() %}
      and event_time >= ('{{ bounds.first_day }}'::date - 1)::timestamp at time zone 'UTC'
      and event_time < ('{{ bounds.last_day }}'::date + 2)::timestamp at time zone 'UTC'
    {% endif %}

),

{% for funnel, steps in var('funnels').items() %}
{% for step in steps %}
-- step k is reached at the session's first event matching it after step k-1 was reached
{{ funnel }}_step_{{ loop.index }} as (

    select
        *,
        min(event_time) filter (
            where {{ funnel }}_matches_{{ loop.index }}
            {%- if not loop.first %} and event_time > {{ funnel }}_reached_{{ loop.index - 1 }}{% endif %}
        ) over (partition by org_id, session_id) as {{ funnel }}_reached_{{ loop.index }}
    from {{ 'events' if loop.first else funnel ~ '_step_' ~ (loop.index - 1) }}

),
{% endfor %}

{{ funnel }}_sessions as (

    select
        session_id,
        org_id,
        min({{ funnel }}_reached_1) as started_at
        {%- for step in steps %},
        bool_or({{ funnel }}_reached_{{ loop.index }} is not null) as reached_{{ loop.index }}
        {%- endfor %}
    from {{ funnel }}_step_{{ steps | length }}
    group by org_id, session_id  -- a session is one org's: org_id keeps the work on its shard (SCALING)
    having min({{ funnel }}_reached_1) is not null

),
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
    from {{ funnel }}_sessions
    where reached_{{ loop.index }}
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
