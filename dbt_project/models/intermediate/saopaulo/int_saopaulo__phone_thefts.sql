{#-
    São Paulo phone robberies/thefts, one row per raw row (stg_saopaulo__phone_thefts): the
    weekday, period and offence texts onto fixed codes, the place subtype onto the 10
    place-type groups by seeds/saopaulo_place_types.csv, and `exclusion_reason` (NULL when the
    row is usable). Nothing is removed here: saopaulo_phone_theft_records keeps the usable rows
    and saopaulo_data_quality counts the others.
-#}

with

phone_thefts as (

    select * from {{ ref('stg_saopaulo__phone_thefts') }}

),

place_types as (

    select distinct
        {{ saopaulo_match_key('trim(raw_subtype)') }} as subtype_key,
        place_type
    from {{ ref('saopaulo_place_types') }}

),

typed as (

    select
        phone_thefts.source_file,
        phone_thefts.source_row,
        phone_thefts.neighbourhood,
        phone_thefts.neighbourhood_raw,
        phone_thefts.brand,
        case
            when phone_thefts.weekday_text like 'SEG%' then 'SEGUNDA'
            when phone_thefts.weekday_text like 'TER%' then 'TERCA'
            when phone_thefts.weekday_text like 'QUA%' then 'QUARTA'
            when phone_thefts.weekday_text like 'QUI%' then 'QUINTA'
            when phone_thefts.weekday_text like 'SEX%' then 'SEXTA'
            when phone_thefts.weekday_text like 'SAB%' then 'SABADO'
            when phone_thefts.weekday_text like 'DOM%' then 'DOMINGO'
        end as weekday,
        case
            when phone_thefts.period_text like '%MADRUGADA%' then 'MADRUGADA'
            when phone_thefts.period_text like '%MANH%' then 'MANHA'
            when phone_thefts.period_text like '%TARDE%' then 'TARDE'
            when phone_thefts.period_text like '%NOITE%' then 'NOITE'
        end as period,
        case
            when phone_thefts.offence_text like '%ROUBO%' then 'ROUBO'
            when phone_thefts.offence_text like '%FURTO%' then 'FURTO'
        end as offence,
        phone_thefts.age,
        phone_thefts.sex,
        phone_thefts.place_subtype,
        phone_thefts.place_subtype_key,
        place_types.place_type
    from phone_thefts
    left join place_types
        on phone_thefts.place_subtype_key = place_types.subtype_key

)

select
    source_file,
    source_row,
    neighbourhood,
    neighbourhood_raw,
    brand,
    weekday,
    case weekday
        when 'SEGUNDA' then 1
        when 'TERCA' then 2
        when 'QUARTA' then 3
        when 'QUINTA' then 4
        when 'SEXTA' then 5
        when 'SABADO' then 6
        when 'DOMINGO' then 7
    end as weekday_number,
    period,
    offence,
    age,
    sex,
    place_subtype,
    place_type,
    case
        when place_subtype is null then 'missing_place_type'
        when place_type is null then 'unmapped_place_type'
        when neighbourhood is null then 'missing_neighbourhood'
        when offence is null then 'unknown_offence'
        when period is null then 'unknown_period'
        when weekday is null then 'unknown_weekday'
        when brand is null then 'missing_brand'
    end as exclusion_reason
from typed
