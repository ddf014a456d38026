-- Each incident source forecast or skipped (and why), per run.
-- From ml.source_status, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'source_status')) }}
