-- Every loaded file of the incident sources: rows and load time.
-- From raw.source_files, typed by its contract (_serving__models.yml).
{{ serving_select(source('raw', 'source_files')) }}
