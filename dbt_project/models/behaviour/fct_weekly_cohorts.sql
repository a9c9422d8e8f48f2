{{ config(materialized='table', tags=['reports'], meta={'dagster': {'group': 'reports'}}) }}

-- Weekly cohorts: users grouped by the ISO week (Monday, UTC) they were first seen in, and how many of
-- each cohort were active again 0, 1, 2 ... weeks later: the retention matrix, one cell per row.
-- The first week of data also holds users who were active before the data starts.

with

weeks as (

    select distinct org_id, user_id, date_trunc('week', day_utc)::date as week
    from {{ ref('fct_user_activity_daily') }}

),

first_seen as (

    select org_id, user_id, min(week) as cohort_week
    from weeks
    group by 1, 2

),

cohorts as (

    select org_id, cohort_week, count(*) as cohort_users
    from first_seen
    group by 1, 2

)

select
    first_seen.org_id,
    first_seen.cohort_week,
    (weeks.week - first_seen.cohort_week) / 7 as weeks_since_first_seen,
    cohorts.cohort_users,
    count(*) as active_users,
    count(*)::double precision / cohorts.cohort_users as retention
from first_seen
join weeks on weeks.org_id = first_seen.org_id and weeks.user_id = first_seen.user_id
join cohorts on cohorts.org_id = first_seen.org_id and cohorts.cohort_week = first_seen.cohort_week
group by 1, 2, 3, 4
