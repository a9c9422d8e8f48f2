{#- The UTC event hours an incremental run recomputes, as a query with one column, event_hour.
    window_kind 'landing' (the hourly job): every hour touched by an event that landed in [min_date, max_date).
    window_kind 'event' (price restatements): the event hours [min_date, max_date) themselves. -#}
{% macro affected_event_hours() -%}
    {%- if var('window_kind', 'landing') == 'event' -%}
    select generate_series('{{ var("min_date") }}'::timestamptz,
                           '{{ var("max_date") }}'::timestamptz - interval '1 hour',
                           interval '1 hour') as event_hour
    {%- else -%}
    select distinct event_hour
    from {{ ref('stg_usage__events') }}
    where landing_hour >= '{{ var("min_date") }}'::timestamptz
      and landing_hour < '{{ var("max_date") }}'::timestamptz
    {%- endif %}
{%- endmacro %}
