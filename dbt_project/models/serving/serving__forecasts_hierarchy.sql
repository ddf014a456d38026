-- Coherent forecasts (expected counts, bottom-up) at area_category, area, category and city level
-- ('*' where summed out), with their 80 / 95 % bands; every run kept.
-- From ml.forecasts_hierarchy, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'forecasts_hierarchy')) }}
