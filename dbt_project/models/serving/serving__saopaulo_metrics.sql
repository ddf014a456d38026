-- São Paulo: held-out metrics of the place-type models per run; rows scored on fewer than 5
-- records are withheld.
-- From ml.saopaulo_metrics, typed by its contract (_serving__models.yml).
-- Small cells: rows of fewer than min_cell_records() (5) records are withheld
-- (a publication rule, docs/saopaulo.md).
select *
from (
    {{ serving_select(source('ml', 'saopaulo_metrics')) }}
) as typed
where n >= {{ min_cell_records() }}
