{#-
    The incremental build log: which days each incremental model rebuilt, so that the model
    downstream rebuilds only those days and the tests check only them (docs/reliability.md,
    "Incremental builds").

    meta.incremental_builds has one row per (model, source) and build: from_day is the first
    day the build rewrote for that source (the model rewrites every day from there to the end);
    source '*' with from_day 0001-01-01 means everything (a first build or a full refresh).
    A build logs its plan in a pre-hook (status 'planned', built_at = the dbt invocation's
    start) and marks it 'built' in a post-hook, which runs only when the model succeeded.

    A downstream model rebuilds from the earliest day its upstream model rewrote in the builds
    it has not seen: the upstream's 'built' rows newer than its own last 'built' row. When it
    has no 'built' row (never built, or built before this log existed) it rebuilds everything.
    A failed or skipped downstream build therefore catches up at its next build.
-#}

{% macro incremental_builds() -%}
    meta.incremental_builds
{%- endmacro %}

{#- on-run-start (two statements): the log exists before any model reads or writes it. -#}
{% macro create_incremental_builds_schema() -%}
    create schema if not exists meta
{%- endmacro %}

{% macro create_incremental_builds() -%}
    create table if not exists {{ incremental_builds() }} (
        model {{ dbt.type_string() }} not null,
        source {{ dbt.type_string() }} not null,
        from_day date not null,
        built_at timestamp not null,
        status {{ dbt.type_string() }} not null
    )
{%- endmacro %}

{#- The dbt invocation's start time: the same for every node of one `dbt build`. -#}
{% macro build_ts() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- Pre-hook: log the plan of this build. plan_sql selects (source, from_day). -#}
{% macro log_build_plan(model_name, plan_sql) -%}
    insert into {{ incremental_builds() }} (model, source, from_day, built_at, status)
    select
        '{{ model_name }}',
        source,
        from_day,
        {{ build_ts() }},
        'planned'
    from ({{ plan_sql }}) as plan
    where source is not null and from_day is not null
{%- endmacro %}

{#- Pre-hook on a first build or a full refresh: everything is rewritten. -#}
{% macro log_full_build(model_name) -%}
    {{ log_build_plan(model_name, "select '*' as source, date '0001-01-01' as from_day") }}
{%- endmacro %}

{#- Post-hook: the build succeeded. -#}
{% macro mark_built(model_name) -%}
    update {{ incremental_builds() }}
    set status = 'built'
    where model = '{{ model_name }}' and built_at = {{ build_ts() }}
{%- endmacro %}

{#- This build's plan, as (source, from_day): for the model's own SQL. -#}
{% macro build_plan(model_name) -%}
    select
        source,
        from_day
    from {{ incremental_builds() }}
    where model = '{{ model_name }}' and built_at = {{ build_ts() }}
{%- endmacro %}

{#- (source, from_day) to rebuild in `consumer` for what `upstream` rewrote since consumer's
    last build; source '*' = every source. If consumer has never been built according to the
    log, one row ('*', 0001-01-01). -#}
{% macro upstream_changes(upstream, consumer) -%}
    with last_build as (
        select max(built_at) as built_at
        from {{ incremental_builds() }}
        where model = '{{ consumer }}' and status = 'built'
    )

    select
        b.source,
        min(b.from_day) as from_day
    from {{ incremental_builds() }} as b
    cross join last_build
    where
        last_build.built_at is not null
        and b.model = '{{ upstream }}'
        and b.status = 'built'
        and b.built_at > last_build.built_at
    group by b.source

    union all

    select
        '*' as source,
        date '0001-01-01' as from_day
    from last_build
    where last_build.built_at is null
{%- endmacro %}

{#- on-run-end: forget what every model has seen (rows older than the oldest last build of
    any model) and plans that never completed. -#}
{% macro prune_incremental_builds() -%}
    delete from {{ incremental_builds() }}
    where
        (status = 'planned' and built_at < {{ build_ts() }})
        or built_at < (
            select min(last_built)
            from (
                select max(built_at) as last_built
                from {{ incremental_builds() }}
                where status = 'built'
                group by model
            )
        )
{%- endmacro %}

{#- on-run-end, after the prune above: a bound for the case it cannot prune (a model no
    longer built, or built rarely, holds the oldest "last build" back). Per model, the builds
    older than its latest `incremental_builds_keep` (default 10) + 1 are folded into that
    (keep + 1)-th build: one row per source with the earliest from_day. A model that has not
    seen them then rebuilds from that day (at worst more than needed, never less). Two
    statements: the fold, then the delete. -#}
{% macro incremental_builds_ranked() -%}
    select
        model,
        source,
        from_day,
        built_at,
        dense_rank() over (partition by model order by built_at desc) as build_rank
    from {{ incremental_builds() }}
    where status = 'built'
{%- endmacro %}

{% macro fold_old_incremental_builds() -%}
    insert into {{ incremental_builds() }} (model, source, from_day, built_at, status)
    with ranked as ({{ incremental_builds_ranked() }}),

    edge as (
        select
            model,
            max(built_at) as built_at
        from ranked
        where build_rank = {{ var('incremental_builds_keep', 10) | int }} + 1
        group by model
    )

    select
        ranked.model,
        ranked.source,
        min(ranked.from_day) as from_day,
        edge.built_at,
        'built' as status
    from ranked
    inner join edge on ranked.model = edge.model
    where ranked.build_rank > {{ var('incremental_builds_keep', 10) | int }} + 1
    group by ranked.model, ranked.source, edge.built_at
{%- endmacro %}

{% macro delete_old_incremental_builds() -%}
    delete from {{ incremental_builds() }}
    where
        status = 'built'
        and (model, built_at) in (
            select
                model,
                built_at
            from ({{ incremental_builds_ranked() }}) as ranked
            where build_rank > {{ var('incremental_builds_keep', 10) | int }} + 1
        )
{%- endmacro %}

{#- For tests of an incremental model: the first day the model rewrote in THIS dbt
    invocation, or 0001-01-01 (every row) when it was not built in this invocation (e.g. a
    plain `dbt test`) or was built in full. -#}
{% macro rebuilt_from(model_name) -%}
    coalesce(
        (
            select min(b.from_day)
            from {{ incremental_builds() }} as b
            where
                b.model = '{{ model_name }}'
                and b.built_at = {{ build_ts() }}
                and b.status = 'built'
        ),
        date '0001-01-01'
    )
{%- endmacro %}

{#- The rows such a test checks: those rewritten in this invocation (a NULL date too). The
    rows before were checked when they were written and are unchanged. Used by the where
    config of the tests (placeholder __rebuilt_days__, see get_where_subquery) and by the
    singular tests. -#}
{% macro rebuilt_days(model_name, date_column='date') -%}
    ({{ date_column }} is null or {{ date_column }} >= {{ rebuilt_from(model_name) }})
{%- endmacro %}

{#- For tests of raw.incidents in a `dbt build`: the rows of the files loaded since the last
    build of stg_police__incidents (every row on its first build, with --full-refresh, or in
    any other command such as `dbt test`). The rows loaded before were checked then. -#}
{% macro new_raw_files() -%}
    {%- if flags.WHICH == 'build' and not flags.FULL_REFRESH -%}
    (source, source_file) in (
        select
            source,
            source_file
        -- by name: a test's dependencies are fixed when the project is parsed
        from raw.source_files
        where loaded_at > coalesce(
            (
                select max(built_at)
                from {{ incremental_builds() }}
                where
                    model = 'stg_police__incidents'
                    and status = 'built'
                    and built_at < {{ build_ts() }}
            ),
            timestamp '0001-01-01'
        )
    )
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- dbt's where config is rendered when the project is parsed; this runs when the test runs,
    so a placeholder in it can depend on this invocation: `__rebuilt_days__` becomes
    rebuilt_days() of the tested model, `__new_raw_files__` new_raw_files(). -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__rebuilt_days__' in where -%}
            {%- set where = where | replace('__rebuilt_days__', rebuilt_days(relation.identifier)) -%}
        {%- endif -%}
        {%- if '__new_raw_files__' in where -%}
            {%- set where = where | replace('__new_raw_files__', new_raw_files()) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
