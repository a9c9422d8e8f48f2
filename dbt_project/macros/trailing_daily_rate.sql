{#- The burn rate a budget forecast runs at, as of `day`: the mean daily spend of the complete days
    before it, at most var('forecast_window_days') of them and none before the org's first day (a day
    without spend counts as 0). Null on the org's first day, which has no complete day before it:
    callers then fall back to that day's spend. `days` is a relation of (org_id, day_local, cost_usd). -#}
{% macro trailing_daily_rate(days, org_id, day, first_day) %}
    case when {{ day }} > {{ first_day }} then
        coalesce((select sum(w.cost_usd) from {{ days }} as w
                  where w.org_id = {{ org_id }}
                    and w.day_local >= {{ day }} - {{ var('forecast_window_days') }}
                    and w.day_local < {{ day }}), 0)
        / ({{ day }} - greatest({{ first_day }}, {{ day }} - {{ var('forecast_window_days') }}))
    end
{% endmacro %}
