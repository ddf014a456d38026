{#-
    São Paulo phone robberies/thefts (raw.saopaulo_phone_thefts): every raw row, renamed,
    typed and trimmed; text fields normalized for matching (no mapping, no rule: the codes,
    the place-type groups and `exclusion_reason` are int_saopaulo__phone_thefts). Nothing is
    removed here.

    Matching keys: the place subtype's is saopaulo_match_key (macros/saopaulo.sql: accents
    stripped, upper case, runs of whitespace collapsed, spaces around '/' removed, trimmed; so
    "Residência", "RESIDENCIA" and "Residencia / Hospedagem" vs "Residencia/Hospedagem" all
    match); the neighbourhood's the same without the '/' rule.
-#}

with

source as (

    select * from {{ source('raw', 'saopaulo_phone_thefts') }}

),

renamed as (

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

)

select * from renamed
