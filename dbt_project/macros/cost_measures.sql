{#- The additive measures of the cost rollups, summed over hours of fct_cost_hourly. -#}
{% macro cost_measures() -%}
        sum(requests)::bigint as requests,
        sum(errors)::bigint as errors,
        sum(unpriced_requests)::bigint as unpriced_requests,
        sum(uncached_input_tokens)::bigint as uncached_input_tokens,
        sum(cache_read_tokens)::bigint as cache_read_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(non_reasoning_output_tokens)::bigint as non_reasoning_output_tokens,
        sum(reasoning_tokens)::bigint as reasoning_tokens,
        sum(cost_request_usd) as cost_request_usd,
        sum(cost_input_usd) as cost_input_usd,
        sum(cost_cache_read_usd) as cost_cache_read_usd,
        sum(cost_cache_write_usd) as cost_cache_write_usd,
        sum(cost_output_usd) as cost_output_usd,
        sum(cost_reasoning_usd) as cost_reasoning_usd,
        sum(cost_usd) as cost_usd,
        sum(provider_cost_usd) as provider_cost_usd
{%- endmacro %}
