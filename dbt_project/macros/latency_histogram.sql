{#- Mergeable latency distributions: log-scale buckets with relative accuracy alpha
    (var latency_relative_accuracy). Bucket i holds the values in (gamma^(i-1), gamma^i], with
    gamma = (1 + alpha) / (1 - alpha), and stands for 2 gamma^i / (gamma + 1): every value of the
    bucket is within alpha of it (the DDSketch construction). Values below 1 ms count as 1 ms.
    Buckets of any hours and any dimensions add up, so percentiles outlive the raw events. -#}

{% macro histogram_gamma() -%}
    {{ (1 + var('latency_relative_accuracy')) / (1 - var('latency_relative_accuracy')) }}
{%- endmacro %}

{% macro latency_bucket(expression) -%}
    ceil(ln(greatest({{ expression }}, 1.0)) / ln({{ histogram_gamma() }}))::int
{%- endmacro %}

{#- The value a bucket stands for. -#}
{% macro bucket_value(bucket) -%}
    (2 * power({{ histogram_gamma() }}::double precision, {{ bucket }}) / ({{ histogram_gamma() }} + 1))
{%- endmacro %}

{#- on-run-start: marts.histogram_quantile(buckets, counts, q), for the models and for BI. The
    arrays may repeat buckets (concatenated histograms); their counts are added first. Like
    percentile_cont it interpolates between the values at ranks floor(r) and ceil(r), r = q (n - 1),
    taking each from its bucket: each is within alpha of the exact value, so the result is within
    alpha of the exact percentile_cont. -#}
{% macro create_histogram_functions() -%}
    create schema if not exists marts;
    create or replace function marts.histogram_quantile(buckets int[], counts bigint[], q double precision)
    returns double precision language plpgsql immutable parallel safe as $fn$
    -- plpgsql, not sql: a sql function with CTEs is planned again on every call (4x slower per row)
    declare
        b int[] := buckets;
        n bigint[] := counts;
        total numeric := 0;
        seen numeric := 0;
        r double precision;
        low int;
        high int;
    begin
        for i in 2 .. coalesce(cardinality(b), 0) loop
            if b[i] is null or b[i - 1] is null or b[i] <= b[i - 1] then  -- repeated or unsorted: merge first
                select array_agg(u.b order by u.b), array_agg(u.n order by u.b) into b, n
                from (select ub as b, sum(un)::bigint as n from unnest(buckets, counts) as x(ub, un)
                      where ub is not null group by ub) as u;
                exit;
            end if;
        end loop;
        if coalesce(cardinality(b), 0) = 0 then
            return null;
        end if;
        for i in 1 .. cardinality(b) loop
            total := total + coalesce(n[i], 0);
        end loop;
        r := q * (total - 1);
        for i in 1 .. cardinality(b) loop
            seen := seen + coalesce(n[i], 0);
            if low is null and seen > floor(r) then
                low := b[i];
            end if;
            if seen > ceil(r) then
                high := b[i];
                exit;
            end if;
        end loop;
        return {{ bucket_value('low') }} + ({{ bucket_value('high') }} - {{ bucket_value('low') }}) * (r - floor(r));
    end
    $fn$;
    {#- marts.latency_quantile(buckets, counts, q): an aggregate over rows that each hold a histogram, for
        BI: merges a group's histograms bucket by bucket, then reads quantile q with histogram_quantile.
        One row in, one row out, so a sum(requests) beside it stays right (an unnest would repeat each
        row once per bucket). The state is q, then the count of bucket b at position b + 2. -#}
    create or replace function marts.histogram_accumulate(state double precision[], buckets int[],
                                                          counts bigint[], q double precision)
    returns double precision[] language plpgsql immutable parallel safe as $fn$
    begin
        if buckets is null or counts is null then
            return state;
        end if;
        if state is null then
            state := array[q];
        end if;
        for i in 1 .. coalesce(array_length(buckets, 1), 0) loop
            state[buckets[i] + 2] := coalesce(state[buckets[i] + 2], 0) + counts[i];
        end loop;
        return state;
    end
    $fn$;
    create or replace function marts.histogram_final_quantile(state double precision[])
    returns double precision language sql immutable parallel safe as $fn$
        select marts.histogram_quantile(array_agg((k - 1)::int order by k), array_agg(n::bigint order by k), state[1])
        from unnest(state[2:]) with ordinality as u(n, k)
        where n > 0
    $fn$;
    create or replace aggregate marts.latency_quantile(int[], bigint[], double precision) (
        sfunc = marts.histogram_accumulate, stype = double precision[], finalfunc = marts.histogram_final_quantile
    );
    {#- marts.array_concat_agg(array): the arrays of a group end to end, to merge histograms of any
        rows: histogram_quantile(array_concat_agg(latency_buckets), array_concat_agg(latency_counts), 0.95)
        (the two aggregates of one group read its rows in the same order) -#}
    create or replace aggregate marts.array_concat_agg(anycompatiblearray) (
        sfunc = array_cat, stype = anycompatiblearray, initcond = '{}'
    )
{%- endmacro %}

{#- on-run-start: the standard normal distribution function, for the experiments' p-values
    (Zelen and Severo's approximation, Abramowitz and Stegun 26.2.17: absolute error under 7.5e-8). -#}
{% macro create_statistics_functions() -%}
    create schema if not exists marts;
    create or replace function marts.normal_cdf(z double precision)
    returns double precision language sql immutable parallel safe as $fn$
        select case when z >= 0 then 1 - tail else tail end
        from (
            select exp(-a * a / 2) / sqrt(2 * pi())
                   * (t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429)))))
                   as tail
            from (select a, 1 / (1 + 0.2316419 * a) as t
                  -- beyond 30 the tail underflows; least() would turn a null z into 30
                  from (select case when z is not null then least(abs(z), 30) end as a) as clamped) as s
        ) as approx
    $fn$;
    {#- chi-square upper tail: exact for 1 degree of freedom, Wilson-Hilferty's cube-root normal
        approximation above that -#}
    create or replace function marts.chi_square_p_value(chi_square double precision, dof int)
    returns double precision language sql immutable parallel safe as $fn$
        select case
            when dof = 1 then 2 * (1 - marts.normal_cdf(sqrt(chi_square)))
            else 1 - marts.normal_cdf(((chi_square / dof) ^ (1.0 / 3) - (1 - 2.0 / (9 * dof))) / sqrt(2.0 / (9 * dof)))
        end
    $fn$
{%- endmacro %}
