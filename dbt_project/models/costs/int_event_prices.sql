{{ config(materialized='view', schema='staging') }}

-- Every gated event with the price it is charged at: an override valid at its event time wins;
-- otherwise the catalog price of its matched model for that time, UTC time of day and input-token
-- tier band (reference/price_catalog.py makes those rows non-overlapping). No match: null price.

with

events as (

    select * from {{ ref('stg_usage__events') }}

),

overrides as (

    select * from {{ source('reference', 'price_overrides') }}

),

matches as (

    select * from {{ source('reference', 'model_matches') }}

),

catalog as (

    select * from {{ source('reference', 'catalog_prices') }}

),

final as (

    select
        events.*,
        coalesce(o.price_id, c.price_id) as price_id,
        case
            when o.price_id is not null then 'override'
            when c.price_id is not null then 'catalog'
        end as price_source,
        matches.catalog_provider_id,
        matches.catalog_model_id,
        coalesce(o.usd_per_request, c.usd_per_request) as usd_per_request,
        coalesce(o.usd_per_mtok_input, c.usd_per_mtok_input) as usd_per_mtok_input,
        coalesce(o.usd_per_mtok_cache_read, c.usd_per_mtok_cache_read) as usd_per_mtok_cache_read,
        coalesce(o.usd_per_mtok_cache_write, c.usd_per_mtok_cache_write) as usd_per_mtok_cache_write,
        coalesce(o.usd_per_mtok_output, c.usd_per_mtok_output) as usd_per_mtok_output,
        coalesce(o.usd_per_mtok_reasoning, c.usd_per_mtok_reasoning) as usd_per_mtok_reasoning

    from events
    left join overrides as o
        on lower(o.provider) = lower(events.provider)
       and lower(o.model) = lower(events.model)
       and (o.valid_from is null or events.event_time >= o.valid_from)
       and (o.valid_to is null or events.event_time < o.valid_to)
    left join matches
        on matches.provider = events.provider
       and matches.model = events.model
    left join catalog as c
        on o.price_id is null
       and c.provider_id = matches.catalog_provider_id
       and c.model_id = matches.catalog_model_id
       and (c.valid_from is null or events.event_time >= c.valid_from)
       and (c.valid_to is null or events.event_time < c.valid_to)
       and (c.time_of_day_from is null
            or ((events.event_time at time zone 'UTC')::time >= c.time_of_day_from
                and (events.event_time at time zone 'UTC')::time < c.time_of_day_to))
       and (c.input_tokens_over is null or events.input_tokens > c.input_tokens_over)
       and (c.input_tokens_up_to is null or events.input_tokens <= c.input_tokens_up_to)

)

select * from final
