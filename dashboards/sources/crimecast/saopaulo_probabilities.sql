-- São Paulo place-type probabilities of the latest run with readable labels:
-- serving.saopaulo_place_probabilities_labelled (the dbt serving contract holds the rule:
-- weekdays and periods translated and numbered, place types translated, neighbourhoods
-- title-cased with their accents restored; the raw codes stay in their columns, inputs match on
-- them).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.saopaulo_place_probabilities_labelled
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
