-- Every loaded source mapping.
-- From raw.sources, typed by its contract (_serving__models.yml).
{{ serving_select(source('raw', 'sources')) }}
