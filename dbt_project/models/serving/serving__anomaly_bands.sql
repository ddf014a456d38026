-- Anomalies of the latest run per source (serving.anomalies_latest) as the dashboards show
-- them: test-period days whose recorded count fell outside the 95 % band of the one-day-ahead
-- forecast, at every level of the hierarchy, with the expected count (forecast_mean) beside the
-- band. A projection of anomalies_latest: the source query reads it whole.
select
    a.source,
    a.series_id,
    a.level,
    a.date,
    a.actual,
    a.forecast_mean as expected,
    a.lo_95,
    a.hi_95,
    a.direction,
    a.tail_probability,
    a.in_latest_window
from {{ ref('serving__anomalies_latest') }} as a
