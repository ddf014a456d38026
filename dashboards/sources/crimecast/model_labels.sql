-- A readable name for each model of the backtests (ml/zoo.py) and whether it is a baseline.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select
        model,
        case model
            when 'champion' then 'champion (best per series)'
            when 'seasonal_naive_7' then 'baseline: same weekday last week'
            when 'mean_7' then 'baseline: 7-day mean'
            when 'mean_28' then 'baseline: 28-day mean'
            when 'poisson_glm' then 'Poisson regression'
            when 'random_forest' then 'random forest'
            when 'hist_gbm' then 'gradient boosting'
            when 'xgboost' then 'XGBoost'
            when 'holt_winters' then 'Holt-Winters'
            when 'lstm' then 'LSTM network'
            when 'ensemble' then 'ensemble of models'
            else replace(model, '_', ' ')
        end as model_label,
        model in ('seasonal_naive_7', 'mean_7', 'mean_28') as is_baseline
    from (
        select distinct model from serving.backtest_metrics_latest
        union
        select distinct model from serving.backtest_predictions_latest
    )
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
