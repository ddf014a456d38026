-- Readable labels and a natural order for every series of the incident sources, and for the
-- totals of the coherent hierarchy ('*' where summed out: source|area|*, source|*|category,
-- source|*|*), so that pages show "B2 (Roxbury) · Larceny" or "District 10 · all categories"
-- instead of ids like boston|B2|*, and list areas 1, 2, 10 (not 1, 10, 2).
-- Boston's police districts have well-known names; an area code of digits only (Houston's
-- police districts, numbered from the beat: 10H50 -> 10) reads "District 10"; any other area
-- shows its code.
-- Portable SQL: "digits only" is translate() leaving nothing (no regexp_full_match);
-- regexp_extract takes its group explicitly (0, the whole match: Spark's default is 1).
{%- set district_names = [
    ('boston', 'A1', 'Downtown'), ('boston', 'A7', 'East Boston'),
    ('boston', 'A15', 'Charlestown'), ('boston', 'B2', 'Roxbury'),
    ('boston', 'B3', 'Mattapan'), ('boston', 'C6', 'South Boston'),
    ('boston', 'C11', 'Dorchester'), ('boston', 'D4', 'South End'),
    ('boston', 'D14', 'Brighton'), ('boston', 'E5', 'West Roxbury'),
    ('boston', 'E13', 'Jamaica Plain'), ('boston', 'E18', 'Hyde Park')
] %}
with district_names as (
    {%- for source, area, area_name in district_names %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select
        '{{ source }}' as source,
        '{{ area }}' as area,
        '{{ area_name }}' as area_name
    {%- endfor %}
),

bottom as (
    select distinct
        source,
        area,
        category
    from {{ ref('serving__daily_counts') }}
),

areas as (
    select
        b.source,
        b.area,
        case
            when n.area_name is not null then b.area || ' (' || n.area_name || ')'
            when b.area <> '' and translate(b.area, '0123456789', '') = ''
                then 'District ' || b.area
            else b.area
        end as area_label,
        -- natural order: the letters, then the number in the code, then the code
        row_number() over (
            partition by b.source
            order by
                regexp_extract(b.area, '^[^0-9]*', 0),
                {{ crimecast.try_cast("regexp_extract(b.area, '[0-9]+', 0)", 'bigint') }}
                nulls first,
                b.area
        ) as area_order
    from (
        select distinct
            source,
            area
        from bottom
    ) as b
    left join district_names as n on b.source = n.source and b.area = n.area
),

categories as (
    select
        c.source,
        c.category,
        c.category as category_label,
        row_number() over (partition by c.source order by lower(c.category)) as category_order
    from (
        select distinct
            source,
            category
        from bottom
    ) as c
),

nodes as (
    select
        source,
        area,
        category
    from bottom
    union all
    select distinct
        source,
        area,
        '*' as category
    from bottom
    union all
    select distinct
        source,
        '*' as area,
        category
    from bottom
    union all
    select distinct
        source,
        '*' as area,
        '*' as category
    from bottom
)

select
    n.source,
    n.area,
    n.category,
    cast(n.source || '|' || n.area || '|' || n.category as {{ engine_type('varchar') }})
        as series_id,
    cast(case
        when n.area <> '*' and n.category <> '*' then 'area_category'
        when n.area <> '*' then 'area'
        when n.category <> '*' then 'category'
        else 'city'
    end as {{ engine_type('varchar') }}) as level,
    cast(coalesce(a.area_label, 'All areas') as {{ engine_type('varchar') }}) as area_label,
    cast(coalesce(c.category_label, 'All categories') as {{ engine_type('varchar') }})
        as category_label,
    cast(
        coalesce(a.area_label, 'All areas') || ' · '
        || coalesce(c.category_label, 'all categories')
        as {{ engine_type('varchar') }}
    ) as series_label,
    cast(coalesce(a.area_order, 0) as {{ engine_type('bigint') }}) as area_order,
    cast(coalesce(c.category_order, 0) as {{ engine_type('bigint') }}) as category_order
from nodes as n
left join areas as a on n.source = a.source and n.area = a.area
left join categories as c on n.source = c.source and n.category = c.category
