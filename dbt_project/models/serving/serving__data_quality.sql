-- Rows read / kept / dropped by cleaning, per source and reason.
-- From marts.incidents_data_quality, typed by its contract (_serving__models.yml).
{{ serving_select(ref('incidents_data_quality')) }}
