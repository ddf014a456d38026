-- São Paulo: probability of each place type of a phone theft given neighbourhood, weekday, period
-- and brand, every run kept; cells built from fewer than 5 records are withheld.
-- From ml.saopaulo_place_probabilities, typed by its contract (_serving__models.yml).
-- Small cells: rows of fewer than min_cell_records() (5) records are withheld
-- (a publication rule, docs/saopaulo.md).
select *
from (
    {{ serving_select(source('ml', 'saopaulo_place_probabilities')) }}
) as typed
where n_records >= {{ min_cell_records() }}
