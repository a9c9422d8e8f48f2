{{ config(materialized='table', schema='build', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Things someone should act on, one row per day, org and finding, with a deterministic id (a rerun
-- never duplicates one) and a status that carries across days: new, or ongoing when the same
-- finding was raised the day before. Rules so far: unpriced_model.

with

unpriced as (

    select
        (hour_utc at time zone 'UTC')::date as day,
        org_id,
        provider,
        model,
        sum(unpriced_requests) as unpriced_requests,
        sum(requests) as requests,
        sum(uncached_input_tokens + cache_read_tokens + cache_write_tokens) as input_tokens,
        sum(non_reasoning_output_tokens + reasoning_tokens) as output_tokens
    from {{ ref('fct_cost_hourly') }}
    group by 1, 2, 3, 4
    having sum(unpriced_requests) > 0

),

unpriced_findings as (

    select
        md5('unpriced_model|' || day || '|' || org_id || '|' || provider || '|' || model) as insight_id,
        'unpriced_model' as rule,
        'unpriced_model|' || org_id || '|' || provider || '|' || model as subject,
        day,
        org_id,
        'cost' as category,
        'warning' as severity,
        unpriced_requests || ' requests to unpriced model ' || provider || '/' || model as title,
        'No catalog or override price covers ' || provider || '/' || model || ' on ' || day
            || ', so these requests have no cost in the cost marts (' || input_tokens || ' input and '
            || output_tokens || ' output tokens).' as detail,
        'Add a line for ' || provider || ',' || model
            || ' to reference/price_overrides.csv (or fix the model name at the source); the affected days '
            || 'are restated automatically.' as recommendation,
        least(100, 20 + 10 * ln(1 + unpriced_requests))::int as impact_score,
        100 as confidence,
        jsonb_build_object('unpriced_requests', unpriced_requests, 'requests', requests,
                           'input_tokens', input_tokens, 'output_tokens', output_tokens) as evidence
    from unpriced

),

findings as (

    select * from unpriced_findings

)

select
    findings.insight_id,
    findings.day,
    findings.org_id,
    findings.category,
    findings.rule,
    findings.severity,
    findings.title,
    findings.detail,
    findings.recommendation,
    findings.impact_score,
    findings.confidence,
    findings.evidence,
    case when previous.insight_id is null then 'new' else 'ongoing' end as status
from findings
left join findings as previous
    on previous.subject = findings.subject
   and previous.day = findings.day - 1
