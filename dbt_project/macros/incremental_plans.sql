{#-
    The plans of the incremental models: per source, the first day an incremental build
    rewrites (it rewrites every day from there on). Each is logged by the model's pre-hook
    (incremental_builds.sql) and read back by the model's SQL, so both use one plan.
-#}

{#- stg_police__incidents: the earliest day of a row of a file version not built yet, or of a
    built row whose file version is gone (removed or replaced file). The staging build
    recomputes whole (source, occurred_at) groups of those rows, so no other day changes. -#}
{% macro stg_police__incidents_plan() -%}
    with

    new_files as (
        select distinct
            f.source,
            f.source_sha256,
            f.loaded_at
        from {{ source('raw', 'source_files') }} as f
        anti join (
            select distinct
                source,
                source_sha256,
                loaded_at
            from {{ this }}
        ) as t
            on
                f.source = t.source
                and f.source_sha256 = t.source_sha256
                and f.loaded_at = t.loaded_at
    ),

    changed as (
        select
            r.source,
            min({{ to_date('r.occurred_at') }}) as from_day
        from {{ source('raw', 'incidents') }} as r
        semi join new_files
            on
                r.source = new_files.source
                and r.source_sha256 = new_files.source_sha256
                and r.loaded_at = new_files.loaded_at
        group by r.source

        union all

        select
            t.source,
            min(t.occurred_date) as from_day
        from {{ this }} as t
        anti join {{ source('raw', 'source_files') }} as f
            on
                t.source = f.source
                and t.source_sha256 = f.source_sha256
                and t.loaded_at = f.loaded_at
        group by t.source
    )

    select
        source,
        min(from_day) as from_day
    from changed
    group by source
{%- endmacro %}

{#- daily_counts: a source's first day when the source is new, its first day moved, its set
    of selected series changed or this table was never built according to the log; otherwise
    the earliest day staging rewrote since this table's last build, or the day after this
    table's last day (its partial last day becomes full), whichever is earlier. -#}
{% macro daily_counts_plan() -%}
    with

    source_days as (
        select
            source,
            min(occurred_date) as first_day
        from {{ ref('int_incidents') }}
        group by source
    ),

    old_ranges as (
        select
            source,
            min(date) as first_day,
            max(date) as last_day
        from {{ this }}
        group by source
    ),

    -- the series of this table: those on its sources' last days (every series of a source
    -- covers the source's whole range, assert_daily_counts_have_no_missing_day), read from
    -- one day instead of the whole table
    built_series as (
        select
            t.source,
            t.series_id
        from {{ this }} as t
        inner join old_ranges
            on
                t.source = old_ranges.source
                and t.date = old_ranges.last_day
    ),

    series_changes as (
        select distinct source
        from (
            (
                select
                    source,
                    series_id
                from {{ ref('int_series') }}
                except
                select
                    source,
                    series_id
                from built_series
            )
            union all
            (
                select
                    source,
                    series_id
                from built_series
                except
                select
                    source,
                    series_id
                from {{ ref('int_series') }}
            )
        )
    ),

    changes as (
        {{ upstream_changes('stg_police__incidents', 'daily_counts') }}
    )

    select
        source_days.source,
        case
            when
                old_ranges.source is null
                or old_ranges.first_day != source_days.first_day
                or series_changes.source is not null
                or exists (select 1 from changes where changes.source = '*')
                then source_days.first_day
            else least(
                coalesce(changes.from_day, old_ranges.last_day + 1),
                old_ranges.last_day + 1
            )
        end as from_day
    from source_days
    left join old_ranges
        on source_days.source = old_ranges.source
    left join series_changes
        on source_days.source = series_changes.source
    left join changes
        on source_days.source = changes.source
{%- endmacro %}

{#- The area and category codes of the selected series: dense ranks per source. -#}
{% macro series_codes() -%}
    select
        source,
        series_id,
        cast(dense_rank() over (partition by source order by area) as integer) as area_code,
        cast(dense_rank() over (partition by source order by category) as integer)
            as category_code
    from {{ ref('int_series') }}
{%- endmacro %}

{#- daily_features: a source's first day when the source is new, its first day moved, its
    area/category codes changed or this table was never built according to the log;
    otherwise the earliest day daily_counts rewrote since this table's last build, or the day
    after this table's last day, whichever is earlier. -#}
{% macro daily_features_plan() -%}
    with

    source_ranges as (
        select
            source,
            min(date) as first_day
        from {{ ref('daily_counts') }}
        group by source
    ),

    old_ranges as (
        select
            source,
            min(date) as first_day,
            max(date) as last_day
        from {{ this }}
        group by source
    ),

    series_codes as (
        {{ series_codes() }}
    ),

    -- the codes of this table's series, read on its sources' last days (as daily_counts_plan)
    built_codes as (
        select
            t.source,
            t.series_id,
            t.area_code,
            t.category_code
        from {{ this }} as t
        inner join old_ranges
            on
                t.source = old_ranges.source
                and t.date = old_ranges.last_day
    ),

    code_changes as (
        select distinct source
        from (
            (
                select
                    source,
                    series_id,
                    area_code,
                    category_code
                from series_codes
                except
                select
                    source,
                    series_id,
                    area_code,
                    category_code
                from built_codes
            )
            union all
            (
                select
                    source,
                    series_id,
                    area_code,
                    category_code
                from built_codes
                except
                select
                    source,
                    series_id,
                    area_code,
                    category_code
                from series_codes
            )
        )
    ),

    changes as (
        {{ upstream_changes('daily_counts', 'daily_features') }}
    )

    select
        source_ranges.source,
        case
            when
                old_ranges.source is null
                or old_ranges.first_day != source_ranges.first_day
                or code_changes.source is not null
                or exists (select 1 from changes where changes.source = '*')
                then source_ranges.first_day
            else least(
                coalesce(changes.from_day, old_ranges.last_day + 1),
                old_ranges.last_day + 1
            )
        end as from_day
    from source_ranges
    left join old_ranges
        on source_ranges.source = old_ranges.source
    left join code_changes
        on source_ranges.source = code_changes.source
    left join changes
        on source_ranges.source = changes.source
{%- endmacro %}

{#- The pre-hook of an incremental model: log its plan, or a full build. -#}
{% macro log_incremental_plan(model_name, plan_sql) -%}
    {%- if is_incremental() -%}
        {{ log_build_plan(model_name, plan_sql) }}
    {%- else -%}
        {{ log_full_build(model_name) }}
    {%- endif -%}
{%- endmacro %}
