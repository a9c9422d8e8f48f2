{#- post-hook of every table model: ANALYZE it when this run changed more than autovacuum's own share
    (50 rows + 10 % of the table), counting this transaction's writes (pg_stat_xact_user_tables) and
    the earlier ones not yet analyzed. Without it a first build or a backfill leaves 10M rows without
    statistics until autovacuum comes round (never, where it is off): the next hour's plans then scan
    whole tables (bench/RESULTS.md). An hour's delete+insert of one day stays under it. -#}
{% macro analyze_after_large_change() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}
    do $analyze$
    begin
        if (select coalesce(x.n_tup_ins + x.n_tup_upd + x.n_tup_del, 0) + coalesce(s.n_mod_since_analyze, 0)
                   > 50 + 0.1 * greatest(c.reltuples, 0)
            from pg_class as c
            left join pg_stat_xact_user_tables as x on x.relid = c.oid
            left join pg_stat_user_tables as s on s.relid = c.oid
            where c.oid = '{{ this }}'::regclass) then
            analyze {{ this }};
        end if;
    end
    $analyze$
    {%- endif -%}
{%- endmacro %}
