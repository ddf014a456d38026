-- Readable labels and a natural order for every series of the incident sources, and for the
-- totals of the coherent hierarchy ('*' where summed out: source|area|*, source|*|category,
-- source|*|*), so that pages show "B2 (Roxbury) · Larceny" or "District 10 · all categories"
-- instead of ids like boston|B2|*, and list areas 1, 2, 10 (not 1, 10, 2).
-- Boston's police districts have well-known names; Houston's areas are police districts
-- numbered from the beat (10H50 -> 10); any other source shows its area code.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with district_names (source, area, area_name) as (
        values
        ('boston', 'A1', 'Downtown'), ('boston', 'A7', 'East Boston'),
        ('boston', 'A15', 'Charlestown'), ('boston', 'B2', 'Roxbury'),
        ('boston', 'B3', 'Mattapan'), ('boston', 'C6', 'South Boston'),
        ('boston', 'C11', 'Dorchester'), ('boston', 'D4', 'South End'),
        ('boston', 'D14', 'Brighton'), ('boston', 'E5', 'West Roxbury'),
        ('boston', 'E13', 'Jamaica Plain'), ('boston', 'E18', 'Hyde Park')
    ),

    bottom as (
        select distinct source, area, category from serving.daily_counts
    ),

    areas as (
        select
            b.source,
            b.area,
            case
                when n.area_name is not null then b.area || ' (' || n.area_name || ')'
                when regexp_full_match(b.area, '[0-9]+') then 'District ' || b.area
                else b.area
            end as area_label,
            -- natural order: the letters, then the number in the code, then the code
            row_number() over (
                partition by b.source
                order by
                    regexp_extract(b.area, '^[^0-9]*'),
                    try_cast(regexp_extract(b.area, '[0-9]+') as bigint) nulls first,
                    b.area
            ) as area_order
        from (select distinct source, area from bottom) as b
        left join district_names as n on n.source = b.source and n.area = b.area
    ),

    categories as (
        select
            source,
            category,
            category as category_label,
            row_number() over (partition by source order by lower(category)) as category_order
        from (select distinct source, category from bottom)
    ),

    nodes as (
        select source, area, category from bottom
        union all
        select distinct source, area, '*' from bottom
        union all
        select distinct source, '*', category from bottom
        union all
        select distinct source, '*', '*' from bottom
    )

    select
        n.source,
        n.area,
        n.category,
        n.source || '|' || n.area || '|' || n.category as series_id,
        case
            when n.area <> '*' and n.category <> '*' then 'area_category'
            when n.area <> '*' then 'area'
            when n.category <> '*' then 'category'
            else 'city'
        end as level,
        coalesce(a.area_label, 'All areas') as area_label,
        coalesce(c.category_label, 'All categories') as category_label,
        coalesce(a.area_label, 'All areas') || ' · '
        || coalesce(c.category_label, 'all categories') as series_label,
        coalesce(a.area_order, 0) as area_order,
        coalesce(c.category_order, 0) as category_order
    from nodes as n
    left join areas as a on a.source = n.source and a.area = n.area
    left join categories as c on c.source = n.source and c.category = n.category
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
