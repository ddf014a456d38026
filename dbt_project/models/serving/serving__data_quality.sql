-- Rows read / kept / dropped by cleaning, per source and reason.
-- From marts.data_quality__cleaning, typed by its contract (_serving__models.yml).
{{ serving_select(ref('data_quality__cleaning')) }}
