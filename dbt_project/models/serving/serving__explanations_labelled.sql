-- Forecast explanations of the latest run per source (serving.explanations_latest) as the
-- dashboards show them: the top drivers of each forecast (rows with a feature and a
-- contribution), with a readable name for each model feature (ml/features.py defines them)
-- instead of roll_mean_28.
with explanations as (
    select * from {{ ref('serving__explanations_latest') }}
)

select
    e.source,
    e.series_id,
    e.date,
    e.horizon,
    e.feature,
    e.feature_value,
    e.contribution,
    cast(case
        when e.feature = 'lag_1' then 'count the day before'
        when e.feature = 'lag_7' then 'count a week before (same weekday)'
        when e.feature = 'lag_364' then 'count a year before (same weekday)'
        when {{ regexp_full_match('e.feature', 'lag_[0-9]+') }}
            then 'count ' || regexp_extract(e.feature, '[0-9]+', 0) || ' days before'
        when {{ regexp_full_match('e.feature', 'roll_mean_[0-9]+') }}
            then 'mean of the last ' || regexp_extract(e.feature, '[0-9]+', 0) || ' days'
        when {{ regexp_full_match('e.feature', 'roll_std_[0-9]+') }}
            then 'variability (std. dev.) of the last '
                || regexp_extract(e.feature, '[0-9]+', 0) || ' days'
        when e.feature = 'day_of_week' then 'day of the week'
        when e.feature = 'month' then 'month of the year'
        when e.feature = 'doy_sin' then 'time of year (seasonal cycle, sine part)'
        when e.feature = 'doy_cos' then 'time of year (seasonal cycle, cosine part)'
        when e.feature = 'is_holiday' then 'public holiday'
        when e.feature = 'area_code' then 'which area (its usual level)'
        when e.feature = 'category_code' then 'which category (its usual level)'
        else replace(e.feature, '_', ' ')
    end as {{ engine_type('varchar') }}) as feature_label
from explanations as e
where e.feature is not null and e.contribution is not null
