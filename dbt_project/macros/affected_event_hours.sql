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

{#- The UTC days holding an affected hour (a daily model recomputes whole days). -#}
{% macro affected_utc_days() -%}
    select distinct (event_hour at time zone 'UTC')::date as day_utc
    from ({{ affected_event_hours() }}) as hours
{%- endmacro %}

{#- A filter on a timestamp column: inside the span of the CTE affected_days. -#}
{% macro within_affected_days(column) -%}
    {{ column }} >= (select min(day_utc) from affected_days)::timestamp at time zone 'UTC'
      and {{ column }} < (select max(day_utc) + 1 from affected_days)::timestamp at time zone 'UTC'
{%- endmacro %}

{#- A filter on events: inside the hours of the CTE affected_hours (the time range first, so the
    day partitions and BRIN index of the raw events are pruned). -#}
{% macro within_affected_hours() -%}
    event_time >= (select min(event_hour) from affected_hours)
      and event_time < (select max(event_hour) + interval '1 hour' from affected_hours)
      and event_hour in (select event_hour from affected_hours)
{%- endmacro %}

{#- The first and last affected UTC day, queried when the model runs, as 'YYYY-MM-DD' literals
    (both '9999-12-31' when nothing is affected). A bound given as a subquery leaves the planner
    guessing how many events it keeps; guessing few, it nest-loops self-joins over days of events. -#}
{% macro affected_day_literals() -%}
    {%- if execute -%}
        {%- set row = run_query("select min(day_utc)::text, max(day_utc)::text from (" ~ affected_utc_days() ~ ") as days").rows[0] -%}
        {{ return((row[0] or '9999-12-31', row[1] or '9999-12-31')) }}
    {%- else -%}
        {{ return(('9999-12-31', '9999-12-31')) }}
    {%- endif -%}
{%- endmacro %}
