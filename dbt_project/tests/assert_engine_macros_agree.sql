{#-
    The project's date and engine-specific macros (macros/dates.sql, macros/cross_database.sql)
    on this adapter agree with dbt-core's own (date_spine ↔ dbt.date_spine), with their
    standard-SQL `default__` versions and with known answers, so a variant written for another
    engine is held to the same results. One row per failing check.
-#}
{%- set quoted = dbt.string_literal(dbt.escape_single_quotes("it's")) %}

with

spine as (

    {{ date_spine("date '2023-12-30'", "date '2024-03-02'") }}

),

-- dbt-core's spine excludes its end date; its bounds are counted when the SQL is compiled
library_spine as (

    select cast(date_day as date) as date_day
    from (
        {{ dbt.date_spine('day', "cast('2023-12-30' as date)", "cast('2024-03-03' as date)") }}
    ) as library_days

),

numbers as (

    {{ integer_spine('1999', '2026', 'n') }}

),

days as (

    select
        spine.date_day,
        {{ add_days('spine.date_day', -364) }} as back_364,
        {{ crimecast.default__add_days('spine.date_day', -364) }} as default_back_364,
        {{ add_days('spine.date_day', 1) }} as next_day,
        {{ crimecast.default__add_days('spine.date_day', 1) }} as default_next_day,
        {{ dbt.datediff(add_days('spine.date_day', -364), 'spine.date_day', 'day') }}
            as days_back
    from spine

),

subtypes as (

    select
        raw_subtype,
        {{ strip_accents('raw_subtype') }} as plain,
        {{ crimecast.default__strip_accents('raw_subtype') }} as default_plain
    from {{ ref('saopaulo_place_types') }}

),

checks as (

    select
        'date_spine' as check_name,
        (select count(*) from spine) = 64
        and (select count(distinct date_day) from spine) = 64
        and not exists (
            select date_day from spine
            except
            select date_day from library_spine
        )
        and not exists (
            select date_day from library_spine
            except
            select date_day from spine
        )
            as passed

    union all

    select
        'integer_spine' as check_name,
        (select count(*) from numbers) = 28
        and (select count(distinct n) from numbers) = 28
        and (select min(n) from numbers) = 1999
        and (select max(n) from numbers) = 2026
            as passed

    union all

    select
        'add_days' as check_name,
        not exists (
            select 1
            from days
            where
                days.back_364 != days.default_back_364
                or days.next_day != days.default_next_day
                or days.days_back != 364
        )
        and (select max(days.next_day) from days) = date '2024-03-03'
            as passed

    union all

    select
        'day_of_week_monday0, day_of_year' as check_name,
        {{ day_of_week_monday0("date '2024-01-01'") }} = 0
        and {{ day_of_week_monday0("date '2024-03-03'") }} = 6
        and {{ day_of_year("date '2024-12-31'") }} = 366
        and {{ day_of_year("date '2023-02-01'") }} = 32
            as passed

    union all

    select
        'strip_accents' as check_name,
        {{ strip_accents("'São Paulo Residência Ônibus Praça'") }}
        = 'Sao Paulo Residencia Onibus Praca'
        and not exists (
            select 1
            from subtypes
            where subtypes.plain != subtypes.default_plain
        )
            as passed

    union all

    select
        'regexp_replace_all' as check_name,
        {{ regexp_replace_all("'a  b   c / d   /e'", '\\s+', ' ') }} = 'a b c / d /e'
        and {{ regexp_replace_all("'a / b  /c'", '\\s*/\\s*', '/') }} = 'a/b/c'
        and {{ regexp_replace_all(quoted, "'", '') }} = 'its'
            as passed

    union all

    select
        'regexp_full_match' as check_name,
        {{ regexp_full_match("'lag_14'", 'lag_[0-9]+') }}
        and not {{ regexp_full_match("'lag_14x'", 'lag_[0-9]+') }}
        and not {{ regexp_full_match("'xlag_14'", 'lag_[0-9]+') }}
        and {{ regexp_full_match("'ab'", 'a|ab') }}
        and {{ regexp_full_match("'a b'", 'a\\s+b') }}
        and {{ regexp_full_match('cast(null as ' ~ dbt.type_string() ~ ')', 'a') }} is null
            as passed

    union all

    select
        'ltrim_chars' as check_name,
        {{ ltrim_chars("'0012a0'", '0') }} = '12a0'
        and {{ crimecast.default__ltrim_chars("'0012a0'", '0') }} = '12a0'
        and {{ ltrim_chars("'000'", '0') }} = ''
        and {{ crimecast.default__ltrim_chars("'000'", '0') }} = ''
        and {{ ltrim_chars("'A01'", '0') }} = 'A01'
        and {{ crimecast.default__ltrim_chars("'A01'", '0') }} = 'A01'
            as passed

    union all

    select
        'try_cast' as check_name,
        {{ try_cast("'42'", dbt.type_int()) }} = 42
        and {{ try_cast("'4x'", dbt.type_int()) }} is null
            as passed

)

select check_name
from checks
where not coalesce(passed, false)
