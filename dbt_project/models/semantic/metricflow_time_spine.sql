-- One row per day: MetricFlow's calendar (time spine), which metrics over time are joined to.
-- A view: nothing stored, and it reaches any date the marts can hold.
select day::date as date_day
from generate_series('2000-01-01'::date, '2099-12-31'::date, interval '1 day') as day
