-- Which serving tables hold what the pipeline produced (present) and which are empty
-- fallbacks because their origin does not exist yet (e.g. France not configured), so that a page
-- can say "not available yet". One row per serving model; a `*_latest` model is present when
-- its base model is. row_count: rows in the warehouse (serving/publish.py sets those of the copy).
{{ serving_availability() }}
