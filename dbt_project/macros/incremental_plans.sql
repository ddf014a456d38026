{#-
    The plans of the incremental models: per source, the first day an incremental build
    rewrites (it rewrites every day from there on). Each is logged by the model's pre-hook
    (incremental_builds.sql) and read back by the model's SQL, so both use one plan.
-#}

{#- stg_police__incidents, incremental: the file versions in raw.source_files that the table
    has not built yet. -#}
{% macro stg_police__incidents_new_files() -%}
    select distinct
        f.source,
        f.source_sha256,
        f.loaded_at
    from {{ source('raw', 'source_files') }} as f
    left join (
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
    where t.source is null
{%- endmacro %}

{#- Every row a staging build has to reconsider: the raw rows of the new file versions
    (`new_files`: a relation of stg_police__incidents_new_files()) and the built rows whose
    file version is gone (removed or replaced file), with the columns a duplicate key can use.
    occurred_at may be NULL. The model recomputes the (source, occurred_at) groups of these
    rows, or their key partners (stg_police__incidents_key_partners); its plan starts at the
    earliest day of both. -#}
{% macro stg_police__incidents_changed_rows(new_files) -%}
    select
        r.source,
        r.occurred_at,
        r.incident_id,
        r.area,
        r.offense_code,
        r.offense_description,
        r.incident_count
    from {{ source('raw', 'incidents') }} as r
    inner join {{ new_files }}
        on
            r.source = {{ new_files }}.source
            and r.source_sha256 = {{ new_files }}.source_sha256
            and r.loaded_at = {{ new_files }}.loaded_at

    union all

    select
        t.source,
        t.occurred_at,
        t.incident_id,
        t.area,
        t.offense_code,
        t.offense_description,
        t.incident_count
    from {{ this }} as t
    left join {{ source('raw', 'source_files') }} as f
        on
            t.source = f.source
            and t.source_sha256 = f.source_sha256
            and t.loaded_at = f.loaded_at
    where f.source is null
{%- endmacro %}

{#- A source with `dedupe: {keys: [...]}`: the duplicate window is partitioned by those keys
    alone, so a changed row can change the rank of a row of any day with the same keys. These
    are the key columns of a row as the plan compares them, `{name: expression}`: coarser than
    staging's (text upper-cased and trimmed, the resolved category left out, the count's sign
    ignored), so every row of a staging partition of a changed row is found. A key the source
    does not use is NULL on every row. -#}
{% macro stg_police__incidents_plan_keys(row, policies) -%}
    {%- set keys = {} -%}
    {%- for field in ['incident_id', 'area', 'offense_code', 'offense_description'] -%}
        {%- do keys.update({'k_' ~ field:
            'case when ' ~ policies ~ '.key_' ~ field ~ ' then upper(trim(' ~ row ~ '.'
            ~ field ~ ')) end'}) -%}
    {%- endfor -%}
    {%- do keys.update({
        'k_count': 'case when ' ~ policies ~ '.key_count then ' ~ row ~ '.incident_count end',
        'k_timestamp': 'case when ' ~ policies ~ '.key_timestamp then ' ~ row
            ~ '.occurred_at end'}) -%}
    {{ return(keys) }}
{%- endmacro %}

{#- True when a key the source uses is NULL in `row`: such a row is never a duplicate (staging),
    so it has no partners. -#}
{% macro stg_police__incidents_key_missing(row, policies) -%}
    (
        {%- for field, column in [
            ('incident_id', 'incident_id'), ('area', 'area'), ('offense_code', 'offense_code'),
            ('offense_description', 'offense_description'), ('count', 'incident_count'),
            ('timestamp', 'occurred_at')] %}
        ({{ policies }}.key_{{ field }} and {{ row }}.{{ column }} is null)
        {{- " or" if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- Sources with `dedupe: {keys: [...]}`: every raw row sharing its plan keys with a changed
    row (the changed rows themselves included, unless a key is missing). Whole staging
    partitions, so recomputing these rows gives the full-refresh ranks. -#}
{% macro stg_police__incidents_key_partners(new_files) -%}
    {%- set changed_keys = stg_police__incidents_plan_keys('changed', 'policies') -%}
    {%- set raw_keys = stg_police__incidents_plan_keys('r', 'policies') -%}
    with

    policies as (
        {{ source_policies() }}
    ),

    changed_keys as (
        select distinct
            changed.source,
            {%- for name, expr in changed_keys.items() %}
            {{ expr }} as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
        from ({{ stg_police__incidents_changed_rows(new_files) }}) as changed
        inner join policies
            on changed.source = policies.source
        where
            policies.dedupe = 'keys'
            and not {{ stg_police__incidents_key_missing('changed', 'policies') }}
    )

    select r.*
    from {{ source('raw', 'incidents') }} as r
    inner join policies
        on r.source = policies.source
    inner join changed_keys
        on
            r.source = changed_keys.source
            {%- for name, expr in raw_keys.items() %}
            and {{ expr }} is not distinct from changed_keys.{{ name }}
            {%- endfor %}
    where policies.dedupe = 'keys'
{%- endmacro %}

{#- stg_police__incidents: the earliest day of the rows it reconsiders, per source. The staging
    build recomputes whole (source, occurred_at) groups of those rows (built-in duplicate
    rule), or their key partners (`dedupe: {keys: [...]}`), so no other day changes. -#}
{% macro stg_police__incidents_plan() -%}
    with

    new_files as (
        {{ stg_police__incidents_new_files() }}
    ),

    touched as (
        select
            changed.source,
            changed.occurred_at
        from ({{ stg_police__incidents_changed_rows('new_files') }}) as changed

        union all

        select
            partners.source,
            partners.occurred_at
        from ({{ stg_police__incidents_key_partners('new_files') }}) as partners
    )

    select
        touched.source,
        min({{ to_date('touched.occurred_at') }}) as from_day
    from touched
    group by touched.source
{%- endmacro %}

{#- The plan of a model built from an upstream incremental model, per source:
      - the source's first day (first_days_sql: source, first_day) when the source is new to
        this table, its first day moved, its set of `keys` changed (current_keys_sql: source
        and the key columns, against this table's rows on each source's last day: every
        series of a source covers the source's whole range, so one day has them all), the
        upstream was rebuilt in full ('*') or this table was never built according to the log;
      - otherwise the earliest day the upstream rewrote since this table's last build, or the
        day after this table's last day (its last day moves on), whichever is earlier. -#}
{% macro downstream_plan(upstream, consumer, first_days_sql, current_keys_sql, keys) -%}
    {%- set key_list = keys | join(', ') -%}
    with

    first_days as (
        {{ first_days_sql }}
    ),

    old_ranges as (
        select
            source,
            min(date) as first_day,
            max(date) as last_day
        from {{ this }}
        group by source
    ),

    built_keys as (
        select
            t.source,
            {% for key in keys %}t.{{ key }}{{ ", " if not loop.last }}{% endfor %}
        from {{ this }} as t
        inner join old_ranges
            on
                t.source = old_ranges.source
                and t.date = old_ranges.last_day
    ),

    current_keys as (
        {{ current_keys_sql }}
    ),

    key_changes as (
        select distinct source
        from (
            (
                select source, {{ key_list }} from current_keys
                except
                select source, {{ key_list }} from built_keys
            )
            union all
            (
                select source, {{ key_list }} from built_keys
                except
                select source, {{ key_list }} from current_keys
            )
        )
    ),

    changes as (
        {{ upstream_changes(upstream, consumer) }}
    )

    select
        first_days.source,
        case
            when
                old_ranges.source is null
                or old_ranges.first_day != first_days.first_day
                or key_changes.source is not null
                or exists (select 1 from changes where changes.source = '*')
                then first_days.first_day
            else least(
                coalesce(changes.from_day, old_ranges.last_day + 1),
                old_ranges.last_day + 1
            )
        end as from_day
    from first_days
    left join old_ranges
        on first_days.source = old_ranges.source
    left join key_changes
        on first_days.source = key_changes.source
    left join changes
        on first_days.source = changes.source
{%- endmacro %}

{#- daily_counts: from stg_police__incidents; keys = the selected series. -#}
{% macro daily_counts_plan() -%}
    {{ downstream_plan(
        'stg_police__incidents',
        'daily_counts',
        "select source, min(occurred_date) as first_day from " ~ ref('int_incidents__kept')
            ~ " group by source",
        "select source, series_id from " ~ ref('int_incidents__series'),
        ['series_id']
    ) }}
{%- endmacro %}

{#- The area and category codes of the selected series: dense ranks per source. -#}
{% macro series_codes() -%}
    select
        source,
        series_id,
        cast(dense_rank() over (partition by source order by area) as integer) as area_code,
        cast(dense_rank() over (partition by source order by category) as integer)
            as category_code
    from {{ ref('int_incidents__series') }}
{%- endmacro %}

{#- daily_features: from daily_counts; keys = the series and their area/category codes. -#}
{% macro daily_features_plan() -%}
    {{ downstream_plan(
        'daily_counts',
        'daily_features',
        "select source, min(date) as first_day from " ~ ref('daily_counts') ~ " group by source",
        series_codes(),
        ['series_id', 'area_code', 'category_code']
    ) }}
{%- endmacro %}

{#- The pre-hook of an incremental model: log its plan, or a full build. -#}
{% macro log_incremental_plan(model_name, plan_sql) -%}
    {%- if is_incremental() -%}
        {{ log_build_plan(model_name, plan_sql) }}
    {%- else -%}
        {{ log_full_build(model_name) }}
    {%- endif -%}
{%- endmacro %}
