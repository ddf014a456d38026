-- What the dashboards' backtest page compares: the out-of-sample predictions of the latest run
-- per source (serving.backtest_predictions_latest) with what was recorded, of its test split
-- when it has one (else its last split by name), at its latest cutoff, EVERY horizon (the page
-- shows the chosen one). `expected` is the predicted mean (prediction_mean; the point
-- prediction when a run has none): sums over series must add expected counts, because the point
-- predictions of count models are medians, which do not add up (summed, they run below the
-- recorded total).
with predictions as (
    select * from {{ ref('serving__backtest_predictions_latest') }}
),

scope as (
    select
        source,
        run_id,
        case
            when max(case when split = 'test' then 1 else 0 end) = 1 then 'test'
            else max(split)
        end as split
    from predictions
    group by source, run_id
),

in_scope as (
    select p.*
    from predictions as p
    inner join scope as s
        on
            p.source = s.source
            and p.run_id = s.run_id
            and p.split is not distinct from s.split
),

last_cutoff as (
    select
        source,
        max(cutoff) as cutoff
    from in_scope
    group by source
)

select
    p.source,
    p.area,
    p.category,
    p.date,
    p.horizon,
    p.model,
    cast(coalesce(p.prediction_mean, p.prediction) as {{ engine_type('double') }}) as expected,
    p.actual
from in_scope as p
inner join last_cutoff as c
    on
        p.source = c.source
        and p.cutoff is not distinct from c.cutoff
