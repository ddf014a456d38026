-- Last full day of data, and the latest forecast run, per source.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with counts as (
        select source, min(date) as first_day, max(date) as last_full_day,
            count(distinct series_id) as series
        from serving.daily_counts
        group by source
    ),
    runs as (
        select source, max(run_id) as latest_run, max(as_of_date) as forecast_as_of
        from serving.forecasts
        group by source
    )
    select counts.*, runs.latest_run, runs.forecast_as_of
    from counts
    left join runs using (source)
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
