{#- Hooks of fct_event_costs for a price restatement (run_window restatement_id set, window_kind 'event'):
    before the rebuild, record the cost per UTC day, org and model of the restated hours; after it,
    the new cost and the delta. Groups whose cost and unpriced count did not change are dropped, so
    the ledger lists exactly what the restatement changed. Both run in the model's transaction. -#}

{% macro cost_ledger_before() -%}
    {%- if run_window('restatement_id', '') != '' and is_incremental() -%}
    create table if not exists audit.cost_restatements (
        restatement_id text not null,
        restated_at timestamptz not null default now(),
        day_utc date not null,
        org_id text not null,
        provider text not null,
        model text not null,
        old_cost_usd numeric not null,
        new_cost_usd numeric,
        delta_usd numeric,
        old_unpriced_requests bigint not null,
        new_unpriced_requests bigint,
        primary key (restatement_id, day_utc, org_id, provider, model)
    );
    delete from audit.cost_restatements where restatement_id = '{{ run_window("restatement_id") }}';
    insert into audit.cost_restatements
        (restatement_id, day_utc, org_id, provider, model, old_cost_usd, old_unpriced_requests)
    select '{{ run_window("restatement_id") }}', day_utc, org_id, provider, model,
           coalesce(sum(cost_usd), 0), count(*) filter (where price_id is null)
    from {{ this }}
    where event_hour >= '{{ run_window("min_date") }}'::timestamptz
      and event_hour < '{{ run_window("max_date") }}'::timestamptz
    group by day_utc, org_id, provider, model
    {%- endif %}
{%- endmacro %}

{% macro cost_ledger_after() -%}
    {%- if run_window('restatement_id', '') != '' and is_incremental() -%}
    {%- set rid = run_window("restatement_id") -%}
    create temporary table restated_costs on commit drop as
    select day_utc, org_id, provider, model,
           coalesce(sum(cost_usd), 0) as cost_usd, count(*) filter (where price_id is null) as unpriced
    from {{ this }}
    where event_hour >= '{{ run_window("min_date") }}'::timestamptz
      and event_hour < '{{ run_window("max_date") }}'::timestamptz
    group by day_utc, org_id, provider, model;
    insert into audit.cost_restatements
        (restatement_id, day_utc, org_id, provider, model, old_cost_usd, old_unpriced_requests)
    select '{{ rid }}', n.day_utc, n.org_id, n.provider, n.model, 0, 0
    from restated_costs as n
    where not exists (select 1 from audit.cost_restatements as l
                      where l.restatement_id = '{{ rid }}' and l.day_utc = n.day_utc and l.org_id = n.org_id
                        and l.provider = n.provider and l.model = n.model);
    update audit.cost_restatements as l
    set new_cost_usd = coalesce(n.cost_usd, 0),
        new_unpriced_requests = coalesce(n.unpriced, 0),
        delta_usd = coalesce(n.cost_usd, 0) - l.old_cost_usd
    from audit.cost_restatements as k
    left join restated_costs as n
        on n.day_utc = k.day_utc and n.org_id = k.org_id and n.provider = k.provider and n.model = k.model
    where k.restatement_id = '{{ rid }}' and l.restatement_id = k.restatement_id
      and l.day_utc = k.day_utc and l.org_id = k.org_id and l.provider = k.provider and l.model = k.model;
    delete from audit.cost_restatements
    where restatement_id = '{{ rid }}' and delta_usd = 0 and new_unpriced_requests = old_unpriced_requests
    {%- endif %}
{%- endmacro %}
