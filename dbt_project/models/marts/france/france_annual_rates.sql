{#-
    Annual recorded counts and rates per 100,000 inhabitants per geography (region or
    département), indicator and unit of count: the mart analysts read.
-#}

select
    series_id,
    geo_level,
    geo_code,
    geo_name,
    code_region,
    region_name,
    indicator,
    unit,
    year,
    recorded_count,
    population,
    rate_per_100k
from {{ ref('int_france__annual_series') }}
