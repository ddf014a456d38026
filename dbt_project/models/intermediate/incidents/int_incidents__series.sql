{#-
    The (source, area, category) series that enter the marts, chosen by dbt vars:
      series_preset  'all' (default: every series observed) or 'top5x5' (per source, the 5
                     most frequent categories × the 5 most frequent areas, by kept incident
                     records; ties broken by name). Default from env var CRIMECAST_SERIES_PRESET.
      areas, categories  optional lists that filter further.
    Both presets look only at incidents BEFORE each source's selection cutoff, so the test
    window of the backtest never decides which series are forecast (or ranked): the earlier of
    the ML step's default test cutoff (last full day − (max(56, horizon) − 1), ml/history.py)
    and the cutoff asked for (var selection_cutoff, default env var CRIMECAST_CUTOFF: a date, or
    source=date,…). A source with no incident before it (too short for a backtest; the ML step
    skips it) is selected on its whole history.
-#}
{%- set preset = series_preset() -%}
{%- set asked = selection_cutoffs() -%}
{%- set horizon = var('selection_horizon', env_var('CRIMECAST_HORIZON', '28')) | int -%}
{%- set test_days = [56, horizon] | max -%}
{%- set areas = series_var_list('areas') -%}
{%- set categories = series_var_list('categories') -%}
{%- set area_filter = 'area in ' ~ sql_string_list(areas) if areas else 'true' -%}
{%- set category_filter = 'category in ' ~ sql_string_list(categories) if categories else 'true' %}

with

all_incidents as (

    select * from {{ ref('int_incidents__kept') }}

),

source_days as (

    select * from {{ ref('int_incidents__source_days') }}

),

selection_cutoffs as (

    select
        source,
        {{ selection_cutoff_sql(asked, add_days('last_full_day', 1 - test_days)) }}
            as selection_cutoff
    from source_days

),

-- a source without any incident before its cutoff keeps its whole history
short_sources as (

    select selection_cutoffs.source
    from selection_cutoffs
    left join all_incidents
        on
            selection_cutoffs.source = all_incidents.source
            and selection_cutoffs.selection_cutoff > all_incidents.occurred_date
    group by selection_cutoffs.source
    having count(all_incidents.source) = 0

),

incidents as (

    select all_incidents.*
    from all_incidents
    left join selection_cutoffs
        on all_incidents.source = selection_cutoffs.source
    left join short_sources
        on all_incidents.source = short_sources.source
    where
        short_sources.source is not null
        or selection_cutoffs.selection_cutoff is null
        or all_incidents.occurred_date < selection_cutoffs.selection_cutoff

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
