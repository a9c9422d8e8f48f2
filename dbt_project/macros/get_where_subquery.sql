{#- Generic tests judge what this run wrote, not the whole history again (dbt_project.yml sets
    where: __this_run__ on every test). __this_run__ becomes, by the tested model:
    - an incremental model: the rows built since the run started, by the database's clock (built_at
      is the building transaction's now(); on-run-start records when this invocation began in
      audit.dbt_invocations); a rebuilt hour or day is written whole, so a key repeated inside it
      is still caught;
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
                {%- set found.scope = "built_at >= '" ~ invocation_started_in_database() ~ "'::timestamptz" -%}
            {%- elif node.name == 'stg_usage__events' -%}
                {%- set column = 'event_hour' if run_window('window_kind', 'landing') == 'event' else 'landing_hour' -%}
                {%- set found.scope = column ~ " >= '" ~ run_window('min_date') ~ "'::timestamptz and " ~ column ~ " < '"
                                ~ run_window('max_date') ~ "'::timestamptz" -%}
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


{#- on-run-start: when this dbt invocation began, by the database's clock, which also stamps built_at
    (comparing with this machine's clock needed a margin, and within it a run judged the previous
    run's rows again). Rows older than 30 days go. -#}
{% macro record_invocation_start() -%}
    create schema if not exists audit;
    create table if not exists audit.dbt_invocations (
        invocation_id text primary key,
        started_at timestamptz not null default now()
    );
    insert into audit.dbt_invocations (invocation_id) values ('{{ invocation_id }}') on conflict do nothing;
    delete from audit.dbt_invocations where started_at < now() - interval '30 days'
{%- endmacro %}

{#- The start of this invocation recorded by record_invocation_start, as text for a literal. -#}
{% macro invocation_started_in_database() -%}
    {%- if execute -%}
        {%- set rows = run_query("select started_at::text from audit.dbt_invocations where invocation_id = '"
                                 ~ invocation_id ~ "'").rows -%}
        {%- if rows | length == 0 -%}
            {{ exceptions.raise_compiler_error("audit.dbt_invocations has no row for invocation " ~ invocation_id
                ~ ": the on-run-start hook record_invocation_start did not run") }}
        {%- endif -%}
        {{ return(rows[0][0]) }}
    {%- else -%}
        {{ return(run_started_at.isoformat()) }}
    {%- endif -%}
{%- endmacro %}
