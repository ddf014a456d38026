{#-
    São Paulo phone robberies/thefts (raw.saopaulo_phone_thefts): every raw row, normalized,
    with the place subtype mapped onto the 10 place-type groups by seeds/saopaulo_place_types.csv
    and `exclusion_reason` (NULL when the row is usable). Nothing is removed here.

    Matching keys: the place subtype's is saopaulo_match_key (macros/saopaulo.sql: accents
    stripped, upper case, runs of whitespace collapsed, spaces around '/' removed, trimmed; so
    "Residência", "RESIDENCIA" and "Residencia / Hospedagem" vs "Residencia/Hospedagem" all
    match); the neighbourhood's the same without the '/' rule.
-#}

with

source as (

    select * from {{ source('raw', 'saopaulo_phone_thefts') }}

),

place_types as (

    select distinct
        {{ saopaulo_match_key('trim(raw_subtype)') }} as subtype_key,
        place_type
    from {{ ref('saopaulo_place_types') }}

),

normalized as (

    select
        source_file,
        source_row,
        nullif(trim({{ regexp_replace_all(
            'upper(' ~ strip_accents("coalesce(bairro, '')") ~ ')', '\\s+', ' '
        ) }}), '') as neighbourhood,
        bairro as neighbourhood_raw,
        nullif(trim(marca_objeto), '') as brand,
        upper({{ strip_accents('trim(dia_semana)') }}) as weekday_text,
        upper({{ strip_accents('trim(periodo)') }}) as period_text,
        upper({{ strip_accents('trim(rubrica)') }}) as offence_text,
        {{ try_cast('trim(idade)', dbt.type_int()) }} as age,
        nullif(upper(trim(sexo)), '') as sex,
        nullif(trim(descr_subtipolocal), '') as place_subtype,
        nullif({{ saopaulo_match_key("coalesce(descr_subtipolocal, '')") }}, '')
            as place_subtype_key
    from source

),

typed as (

    select
        normalized.source_file,
        normalized.source_row,
        normalized.neighbourhood,
        normalized.neighbourhood_raw,
        normalized.brand,
        case
            when normalized.weekday_text like 'SEG%' then 'SEGUNDA'
            when normalized.weekday_text like 'TER%' then 'TERCA'
            when normalized.weekday_text like 'QUA%' then 'QUARTA'
            when normalized.weekday_text like 'QUI%' then 'QUINTA'
            when normalized.weekday_text like 'SEX%' then 'SEXTA'
            when normalized.weekday_text like 'SAB%' then 'SABADO'
            when normalized.weekday_text like 'DOM%' then 'DOMINGO'
        end as weekday,
        case
            when normalized.period_text like '%MADRUGADA%' then 'MADRUGADA'
            when normalized.period_text like '%MANH%' then 'MANHA'
            when normalized.period_text like '%TARDE%' then 'TARDE'
            when normalized.period_text like '%NOITE%' then 'NOITE'
        end as period,
        case
            when normalized.offence_text like '%ROUBO%' then 'ROUBO'
            when normalized.offence_text like '%FURTO%' then 'FURTO'
        end as offence,
        normalized.age,
        normalized.sex,
        normalized.place_subtype,
        normalized.place_subtype_key,
        place_types.place_type
    from normalized
    left join place_types
        on normalized.place_subtype_key = place_types.subtype_key

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
