{#-
    The (source, area, category) series that enter the marts, chosen by dbt vars:
      series_preset  'all' (default: every series observed) or 'top5x5' (per source, the 5
                     most frequent categories × the 5 most frequent areas, by kept incident
                     records; ties broken by name). Default from env var CRIMECAST_SERIES_PRESET.
      areas, categories  optional lists that filter further.
-#}
{%- set preset = series_preset() -%}
{%- set areas = series_var_list('areas') -%}
{%- set categories = series_var_list('categories') -%}
{%- set area_filter = 'area in ' ~ sql_string_list(areas) if areas else 'true' -%}
{%- set category_filter = 'category in ' ~ sql_string_list(categories) if categories else 'true' %}

with

incidents as (

    select * from {{ ref('int_incidents__kept') }}

),

observed as (

    select
        source,
        area,
        category,
        count(*) as n_records
    from incidents
    group by source, area, category

),

area_ranks as (

    select
        source,
        area,
        row_number() over (
            partition by source order by sum(n_records) desc, area asc
        ) as area_rank
    from observed
    group by source, area

),

category_ranks as (

    select
        source,
        category,
        row_number() over (
            partition by source order by sum(n_records) desc, category asc
        ) as category_rank
    from observed
    group by source, category

),

-- both presets are written out; the one not chosen is removed by a constant condition
candidates as (

    select
        area_ranks.source,
        area_ranks.area,
        category_ranks.category
    from area_ranks
    inner join category_ranks
        on area_ranks.source = category_ranks.source
    where
        '{{ preset }}' = 'top5x5'
        and area_ranks.area_rank <= 5
        and category_ranks.category_rank <= 5

    union all

    select
        source,
        area,
        category
    from observed
    where '{{ preset }}' = 'all'

),

final as (

    select
        source,
        source || '|' || area || '|' || category as series_id,
        area,
        category
    from candidates
    where
        {{ area_filter }}
        and {{ category_filter }}

)

select * from final
