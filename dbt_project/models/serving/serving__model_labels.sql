-- A readable name for each model of the latest backtests (ml/zoo.py), those of the metrics and
-- of the predictions, and whether it is a baseline.
{%- set baselines = ['seasonal_naive_7', 'mean_7', 'mean_28', 'median_7', 'median_28'] %}
with models as (
    select distinct model from {{ ref('serving__backtest_metrics_latest') }}
    union
    select distinct model from {{ ref('serving__backtest_predictions_latest') }}
)

select
    m.model,
    cast(case m.model
        when 'champion' then 'champion (best per series)'
        when 'seasonal_naive_7' then 'baseline: same weekday last week'
        when 'mean_7' then 'baseline: 7-day mean'
        when 'mean_28' then 'baseline: 28-day mean'
        when 'median_7' then 'baseline: median, 7 days'
        when 'median_28' then 'baseline: median, 28 days'
        when 'poisson_glm' then 'Poisson regression'
        when 'random_forest' then 'random forest'
        when 'hist_gbm' then 'gradient boosting'
        when 'xgboost' then 'XGBoost'
        when 'holt_winters' then 'Holt-Winters'
        when 'lstm' then 'LSTM network'
        when 'ensemble' then 'ensemble of models'
        else replace(m.model, '_', ' ')
    end as {{ engine_type('varchar') }}) as model_label,
    m.model in {{ sql_string_list(baselines) }} as is_baseline
from models as m
