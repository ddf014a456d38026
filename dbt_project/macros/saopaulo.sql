{#- The key a São Paulo place subtype is matched on, for the raw value and the seed's
    spelling alike (stg_saopaulo__phone_thefts, int_saopaulo__phone_thefts,
    tests/saopaulo_place_type_seed_consistent):
    accents stripped, upper case, spaces around '/' removed, runs of whitespace collapsed,
    trimmed; so "Residência / Hospedagem" and "RESIDENCIA/HOSPEDAGEM" match. -#}
{% macro saopaulo_match_key(expr) -%}
    {%- set upper_plain = 'upper(' ~ strip_accents(expr) ~ ')' -%}
    trim({{ regexp_replace_all(regexp_replace_all(upper_plain, '\\s*/\\s*', '/'), '\\s+', ' ') }})
{%- endmacro %}
