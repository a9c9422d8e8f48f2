{#- Generic tests judge what this run wrote, not the whole history again (dbt_project.yml sets
    where: __this_run__ on every test). __this_run__ becomes, by the tested model:
    - an incremental model: the rows built since the run started (built_at >= run_started_at, less
      5 minutes for clocks that differ between this machine and the database's); a
      rebuilt hour or day is written whole, so a key repeated inside it is still caught;
    - stg_usage__events (a view over the raw events): the events of the run's window (landing hours
      for the hourly job, event hours for a restatement);
    - anything else (views, tables rebuilt whole): every row.
    A full build, a plain `dbt build` outside Dagster, or the var tests_judge_everything judges every row. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__this_run__' in where and var('tests_judge_everything', false) -%}
        {%- set where = where | replace('__this_run__', 'true') -%}
    {%- elif where and '__this_run__' in where -%}
        {#- a namespace: what a for loop sets does not outlive it otherwise -#}
        {%- set found = namespace(scope=none) -%}
        {%- for node in graph.nodes.values()
                if node.resource_type == 'model' and node.alias == relation.identifier -%}
            {%- if node.config.materialized == 'incremental' -%}
                {%- set found.scope = "built_at >= '" ~ run_started_at.isoformat() ~ "'::timestamptz - interval '5 minutes'" -%}
            {%- elif node.name == 'stg_usage__events' -%}
                {%- set column = 'event_hour' if var('window_kind', 'landing') == 'event' else 'landing_hour' -%}
                {%- set found.scope = column ~ " >= '" ~ var('min_date') ~ "'::timestamptz and " ~ column ~ " < '"
                                ~ var('max_date') ~ "'::timestamptz" -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set where = where | replace('__this_run__', found.scope or 'true') -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
