{#- The window of this run: min_date, max_date, window_kind, restatement_id (orchestration/defs/dbt.py
    window_vars). Dagster passes it in the environment (WAREHOUSE_DBT_MIN_DATE, ...), read only as a model
    runs: passed as --vars, every new hour made dbt parse the whole project again (5 s of each run). By
    hand, --vars still work: `dbt build --vars '{"min_date": ..., "max_date": ...}'`. -#}
{% macro run_window(name, default=none) -%}
    {%- set given = env_var('WAREHOUSE_DBT_' ~ name | upper, '') if execute else '' -%}
    {%- if given != '' -%}
        {{ return(given) }}
    {%- elif default is none -%}
        {{ return(var(name)) }}
    {%- else -%}
        {{ return(var(name, default)) }}
    {%- endif -%}
{%- endmacro %}
