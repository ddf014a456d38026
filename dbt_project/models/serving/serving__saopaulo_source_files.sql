-- São Paulo: every loaded file of phone-theft records, rows and load time.
-- From raw.saopaulo_source_files, typed by its contract (_serving__models.yml).
{{ serving_select(source('raw', 'saopaulo_source_files')) }}
