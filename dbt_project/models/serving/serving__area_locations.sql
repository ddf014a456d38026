-- Where each area of an incident source is, and how many of its records are located.
-- From marts.area_locations, typed by its contract (_serving__models.yml).
{{ serving_select(ref('area_locations')) }}
