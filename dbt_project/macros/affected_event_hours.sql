{#- What an incremental run recomputes. Everything here is looked up as the model runs and written into
    its SQL as literals: the planner then knows how many hours and days, and how many events they
    hold. Given subqueries instead, it guessed, and a wrong guess nest-looped joins over a day of
    events (seen on 10M events: 14 s instead of 0.7 s for the funnel, minutes for the experiment
    rollup's join to the event costs). -#}

{#- The UTC event hours an incremental run recomputes, as a query with one column, event_hour.
    window_kind 'landing' (the hourly job): every hour touched by an event that landed in [min_date, max_date).
    window_kind 'event' (price restatements): the event hours [min_date, max_date) themselves. -#}
{% macro affected_event_hours() -%}
    {%- if run_window('window_kind', 'landing') == 'event' -%}
    select generate_series('{{ run_window("min_date") }}'::timestamptz,
                           '{{ run_window("max_date") }}'::timestamptz - interval '1 hour',
                           interval '1 hour') as event_hour
    {%- else -%}
    {%- set hours = landed_event_hours() -%}
    select unnest(array[{% for hour in hours %}'{{ hour }}'{{ ", " if not loop.last }}{% endfor %}]::timestamptz[])
           as event_hour
    {%- endif %}
{%- endmacro %}

{#- The event hours of the events that landed in [min_date, max_date) in hours whose gate passed, as
    'YYYY-MM-DD HH:00:00+00' strings, with the hours a file delivered again took its events away from.
    Worked out once per dbt invocation by record_landed_event_hours (on-run-start); every model reads
    them back by invocation id (1 ms: the lookup itself scans every day partition of the raw events, and
    ran 27 times a run). -#}
{% macro landed_event_hours() -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set sql -%}
    select to_char(event_hour at time zone 'UTC', 'YYYY-MM-DD HH24:00:00+00')
    from audit.dbt_landed_event_hours
    where invocation_id = '{{ invocation_id }}'
    order by 1
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values() | list) }}
{%- endmacro %}

{#- on-run-start: the event hours landed_event_hours reads, for an invocation that runs an incremental
    model or a test using the window macros of this file (the rule of the staging view, read from the
    sources so both tables are cut to the window: 30 ms on 10M events against 300 ms through the view).
    The reports' rebuild needs none. Rows of invocations older than a day go. -#}
{% macro record_landed_event_hours() -%}
    {%- set windowed = [] -%}
    {%- for id in selected_resources if id in graph.nodes -%}
        {%- set node = graph.nodes[id] -%}
        {%- if node.config.materialized == 'incremental' -%}{%- do windowed.append(id) -%}{%- endif -%}
        {%- for macro in node.depends_on.macros
                if macro.split('.')[-1].startswith(('affected_', 'within_affected_')) -%}
            {%- do windowed.append(id) -%}
        {%- endfor -%}
    {%- endfor -%}
    create table if not exists audit.dbt_landed_event_hours (
        invocation_id text not null,
        event_hour timestamptz not null,
        recorded_at timestamptz not null default now(),
        primary key (invocation_id, event_hour)
    );
    delete from audit.dbt_landed_event_hours where recorded_at < now() - interval '1 day';
    {%- if windowed and run_window('window_kind', 'landing') == 'landing' %}
    insert into audit.dbt_landed_event_hours (invocation_id, event_hour)
    select '{{ invocation_id }}', event_hour
    from (
        select date_trunc('hour', events.event_time, 'UTC') as event_hour
        from {{ source('raw', 'usage_events') }} as events
        join {{ source('raw', 'landing_hours') }} as gate
            on gate.landing_hour = events.landing_hour
           and gate.gate_status = 'passed'
        where events.landing_hour >= '{{ run_window("min_date") }}'::timestamptz
          and events.landing_hour < '{{ run_window("max_date") }}'::timestamptz
          and gate.landing_hour >= '{{ run_window("min_date") }}'::timestamptz
          and gate.landing_hour < '{{ run_window("max_date") }}'::timestamptz
        union
        select retracted.event_hour
        from {{ source('raw', 'retracted_event_hours') }} as retracted
        join {{ source('raw', 'landing_hours') }} as gate
            on gate.landing_hour = retracted.landing_hour
           and gate.gate_status = 'passed'
        where retracted.landing_hour >= '{{ run_window("min_date") }}'::timestamptz
          and retracted.landing_hour < '{{ run_window("max_date") }}'::timestamptz
    ) as hours
    {%- endif %}
{%- endmacro %}

{#- The UTC days holding an affected hour (a daily model recomputes whole days). -#}
{% macro affected_utc_days() -%}
    select distinct (event_hour at time zone 'UTC')::date as day_utc
    from ({{ affected_event_hours() }}) as hours
{%- endmacro %}

{#- The first and last affected hour as text literals, and the affected UTC days ('9999-12-31 ...'
    and no days when nothing is affected, an empty range). The hourly job's window is worked out here
    from the landed hours (one lookup per call); a restatement's window by the database. -#}
{% macro affected_bounds() -%}
    {%- if run_window('window_kind', 'landing') == 'event' -%}
    {%- set sql -%}
    select to_char(min(event_hour) at time zone 'UTC', 'YYYY-MM-DD HH24:00:00+00'),
           to_char(max(event_hour) at time zone 'UTC', 'YYYY-MM-DD HH24:00:00+00'),
           string_agg(distinct to_char(event_hour at time zone 'UTC', 'YYYY-MM-DD'), ','
                      order by to_char(event_hour at time zone 'UTC', 'YYYY-MM-DD'))
    from ({{ affected_event_hours() }}) as hours
    {%- endset -%}
    {%- set row = run_query(sql).rows[0] if execute else [none, none, none] -%}
    {%- set first_hour, last_hour, days = row[0], row[1], (row[2].split(',') if row[2] else []) -%}
    {%- else -%}
    {%- set hours = landed_event_hours() -%}  {#- sorted 'YYYY-MM-DD HH:00:00+00' strings -#}
    {%- set first_hour, last_hour, days = (hours[0] if hours else none), (hours[-1] if hours else none), [] -%}
    {%- for hour in hours -%}{%- if hour[:10] not in days -%}{%- do days.append(hour[:10]) -%}{%- endif -%}{%- endfor -%}
    {%- endif -%}
    {{ return({'first_hour': first_hour or '9999-12-31 00:00:00+00', 'last_hour': last_hour or '9999-12-31 00:00:00+00',
               'days': days, 'first_day': days[0] if days else '9999-12-31',
               'last_day': days[-1] if days else '9999-12-31'}) }}
{%- endmacro %}

{#- A filter on a timestamp column: inside the affected UTC days, one range per day (the planner
    reads each range off the column's statistics). -#}
{% macro within_affected_days(column) -%}
    {%- set days = affected_bounds().days or ['9999-12-31'] -%}
    ({% for day in days %}{{ "\n       or " if not loop.first }}({{ column }} >= '{{ day }}'::date::timestamp at time zone 'UTC'
        and {{ column }} < ('{{ day }}'::date + 1)::timestamp at time zone 'UTC'){% endfor %})
{%- endmacro %}

{#- A filter on events: inside the hours of the CTE affected_hours (the time range first, so the
    day partitions and BRIN index of the raw events are pruned). -#}
{% macro within_affected_hours() -%}
    {%- set bounds = affected_bounds() -%}
    event_time >= '{{ bounds.first_hour }}'::timestamptz
      and event_time < '{{ bounds.last_hour }}'::timestamptz + interval '1 hour'
      and event_hour in (select event_hour from affected_hours)
{%- endmacro %}
