-- France: recorded offences per 100,000 inhabitants per year, by region and département.
-- From marts.france_annual_rates, typed by its contract (_serving__models.yml).
{{ serving_select(ref('france_annual_rates')) }}
