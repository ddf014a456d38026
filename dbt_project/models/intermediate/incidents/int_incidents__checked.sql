{#-
    Every staged incident row (stg_police__incidents) with its category resolved and the reason
    it is dropped (drop_reason, NULL when the row is kept). Nothing is removed here:
    int_incidents__kept keeps the rows whose drop_reason is NULL and incidents_data_quality
    counts the others.

    Incremental by rebuild window (macros/incremental_window.sql): the rows of the days from
    each changed source's window day on (var rebuild_from, written by the loader in
    raw.load_log: the earliest day of the rows it inserted or deleted), and the source's rows
    without a timestamp, replace the same rows of the table (delete+insert on DuckDB,
    a table rebuilt whole on Spark). Duplicates are ranked
    within (source, occurred_at) groups (built-in rule, `dedupe: {keys}` with timestamp), so a
    whole day holds every partner of a changed row; for `dedupe: {keys}` without timestamp the
    loader's window starts at the source's first day. A change of the category_map seed, of
    the min year var or of this SQL needs `dbt build --full-refresh` (docs/reliability.md).

    Coordinates (optional, the mapping's latitude / longitude): kept when both are numbers in
    the source's plausible ranges (raw.sources, the mapping's `range`, else the globe) and not
    0 / 0 (a common "no location" value), else set NULL; coordinates_status says which
    ('located', 'implausible': published but not plausible, 'missing': none published) and
    incidents_data_quality counts them. They never drop a row.

    implausible_date: occurred before 1 January of var min_plausible_year (env
    CRIMECAST_MIN_YEAR, default 1990) or more than 14 hours after the row's load time (local
    wall-clock time can be at most UTC+14, loaded_at is UTC): a date in the future.
-#}

{{ config(
    on_schema_change='fail',
    **rebuild_window_config(['source', 'occurred_date'], delete_window=true)
) }}

{%- set min_year = var('min_plausible_year', env_var('CRIMECAST_MIN_YEAR', '1990')) | int %}

with

-- each source's cleaning policies (dedupe here; macros/source_policies.sql)
policies as (

    {{ source_policies() }}

),

{% if is_incremental() -%}

-- the rebuild window's raw rows: whole days, so every duplicate group of a changed row
renamed as (

    select * from {{ ref('stg_police__incidents') }}
    where {{ in_rebuild_window('source', 'occurred_date') }}

),

{%- else %}

renamed as (

    select * from {{ ref('stg_police__incidents') }}

),

{%- endif %}

category_map as (

    select
        trim(source) as source,
        trim(match_on) as match_on,
        trim(raw_value) as raw_value,
        trim(category) as category
    from {{ ref('category_map') }}

),

-- category_map rows by what they match on; the join keys are normalised the same way on both
-- sides: category names case-insensitively, offense codes without leading zeros, descriptions
-- upper-cased.
map_category as (

    select
        source,
        lower(raw_value) as match_key,
        category
    from category_map
    where match_on = 'category'

),

map_offense_code as (

    select
        source,
        {{ ltrim_chars('upper(raw_value)', '0') }} as match_key,
        category
    from category_map
    where match_on = 'offense_code'

),

map_offense_description as (

    select
        source,
        upper(raw_value) as match_key,
        category
    from category_map
    where match_on = 'offense_description'

),

categorised as (

    select
        renamed.*,
        coalesce(
            map_category.category,
            renamed.category_raw,
            map_offense_code.category,
            map_offense_description.category
        ) as category,
        case
            when map_category.category is not null then 'category_map:category'
            when renamed.category_raw is not null then 'published'
            when map_offense_code.category is not null then 'category_map:offense_code'
            when map_offense_description.category is not null
                then 'category_map:offense_description'
        end as category_resolved_by
    from renamed
    left join map_category
        on
            renamed.source = map_category.source
            and lower(renamed.category_raw) = map_category.match_key
    left join map_offense_code
        on
            renamed.source = map_offense_code.source
            and {{ ltrim_chars('renamed.offense_code', '0') }} = map_offense_code.match_key
    left join map_offense_description
        on
            renamed.source = map_offense_description.source
            and upper(renamed.offense_description) = map_offense_description.match_key

),

located as (

    select
        categorised.*,
        -- a source missing from raw.sources takes the globe, like source_policies()
        coalesce(
            categorised.latitude
            between coalesce(policies.latitude_min, -90.0)
            and coalesce(policies.latitude_max, 90.0)
            and categorised.longitude
            between coalesce(policies.longitude_min, -180.0)
            and coalesce(policies.longitude_max, 180.0)
            and not (categorised.latitude = 0 and categorised.longitude = 0),
            false
        ) as is_located
    from categorised
    left join policies
        on categorised.source = policies.source

),

checked as (

    select
        *,
        case
            when filter_reason is not null then filter_reason
            when occurred_at is null then 'unparseable_timestamp'
            when
                occurred_at < cast('{{ "%04d" % min_year }}-01-01 00:00:00' as timestamp)
                or occurred_at > {{ dbt.dateadd('hour', 14, 'loaded_at') }}
                then 'implausible_date'
            when area is null then 'missing_area'
            when category is null then 'missing_category'
        end as invalid_reason
    from located

),

-- Duplicates, per the source's `dedupe` policy (sources/README.md):
--   default (built-in rule). A row with an incident_id duplicates another valid row of the
--     same source with the same incident_id, offense code and description, occurred_at, area
--     and count value (a -1 reversal never duplicates its +1). Boston publishes one
--     INCIDENT_NUMBER once per offense code: those rows differ in offense_code and are all
--     kept. Rows without an incident_id are compared on every canonical field (published
--     category too). Identical id-less rows within ONE file are kept: without an id they
--     cannot be told apart from separate incidents of the same hour, area and category
--     (Houston publishes hourly times and no id). Republishing is what is dropped: the n-th
--     identical id-less row of a file duplicates the n-th identical row of another file.
--   keys: a valid row duplicates another valid row of the source with equal values of the
--     mapping's keys (category = the resolved category) and the same sign of count (a
--     reversal only duplicates a reversal); a row missing one of its keys is never one.
--   off: no row is a duplicate.
-- Which copy stays does not depend on file names: the one of the latest-loaded file version,
-- then the lowest row number, then the smaller file sha256.
keyed as (

    select
        checked.*,
        coalesce(policies.dedupe, 'default') as dedupe,
        case
            when checked.incident_id is null
                then row_number() over same_record_in_file
        end as occurrence_in_file,
        coalesce(policies.key_category, false) as key_category,
        case
            when coalesce(policies.dedupe, 'default') = 'default'
                then checked.invalid_reason is null
            when policies.dedupe = 'keys'
                then
                    checked.invalid_reason is null
                    and not {{ stg_police__incidents_key_missing('checked', 'policies') }}
            else false
        end as is_dedupable,
        {%- for field, column in [
            ('incident_id', 'incident_id'), ('offense_code', 'offense_code'),
            ('offense_description', 'offense_description'), ('timestamp', 'occurred_at'),
            ('area', 'area')] %}
        case
            when coalesce(policies.dedupe, 'default') != 'keys' or policies.key_{{ field }}
                then checked.{{ column }}
        end as k_{{ column }},
        {%- endfor %}
        case
            when coalesce(policies.dedupe, 'default') != 'keys' or policies.key_count
                then checked.incident_count
            when checked.incident_count < 0 then -1
            else 1
        end as k_incident_count
    from checked
    left join policies
        on checked.source = policies.source
    window same_record_in_file as (
        partition by
            checked.source,
            checked.source_file,
            checked.invalid_reason is null,
            checked.incident_id,
            checked.offense_code,
            checked.offense_description,
            checked.occurred_at,
            checked.area,
            checked.incident_count,
            checked.category_raw
        order by checked.source_row asc
    )

),

ranked as (

    select
        *,
        case
            when is_dedupable then row_number() over same_record
        end as duplicate_rank
    from keyed
    window same_record as (
        partition by
            source,
            is_dedupable,
            k_incident_id,
            k_offense_code,
            k_offense_description,
            k_occurred_at,
            k_area,
            k_incident_count,
            case when dedupe = 'default' and incident_id is null then category_raw end,
            case when key_category then category end,
            case when dedupe = 'default' then occurrence_in_file end
        order by loaded_at desc nulls last, source_row asc, source_sha256 asc
    )

),

final as (

    select
        source,
        incident_id,
        occurred_at,
        {{ to_date('occurred_at') }} as occurred_date,
        occurred_at_raw,
        area,
        category,
        category_raw,
        category_resolved_by,
        offense_code,
        offense_description,
        incident_count,
        filter_reason,
        coalesce(
            invalid_reason,
            case when duplicate_rank > 1 then 'duplicate' end
        ) as drop_reason,
        source_file,
        source_sha256,
        source_row,
        loaded_at,
        case when is_located then latitude end as latitude,
        case when is_located then longitude end as longitude,
        case
            when is_located then 'located'
            when latitude_raw is null and longitude_raw is null then 'missing'
            else 'implausible'
        end as coordinates_status
    from ranked

)

select * from final
