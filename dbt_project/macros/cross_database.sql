{#-
    Engine-specific SQL that dbt-core has no cross-database macro for (dbt-core's own are used
    where they fit: dbt.type_string, dbt.type_int, dbt.datediff, dbt.dateadd,
    dbt.generate_series, dbt.safe_cast, dbt.string_literal, dbt.escape_single_quotes;
    integer_spine below is dbt.generate_series, filtered).
    Dispatched: `duckdb__` is what the warehouse runs, `spark__` follows a trial of the models
    on Spark (issue 16; tests/test_spark.py), `default__` is standard SQL.
-#}

{#- One row per integer from start_value to end_value inclusive, as a bigint column
    `column_name`. The bounds are SQL expressions (scalar subqueries are fine). dbt.generate_series
    needs its bound when the SQL is compiled: a fixed 2^16 numbers (179 years of days), of which
    the filter keeps the range (dbt-duckdb runs it as DuckDB's generate_series; other adapters
    get dbt-core's cross join of powers of two). -#}
{% macro integer_spine(start_value, end_value, column_name) -%}
    select cast({{ start_value }} + numbers.generated_number - 1 as bigint) as {{ column_name }}
    from ({{ dbt.generate_series(65536) }}) as numbers
    where numbers.generated_number - 1 <= ({{ end_value }}) - ({{ start_value }})
{%- endmacro %}

{#- Letters without their diacritics ('São' → 'Sao'). DuckDB: strip_accents (any combining
    mark); elsewhere translate() over the accented letters of Latin-1 and Latin Extended-A/B
    (the same result for those letters; other scripts are left as they are). -#}
{% macro strip_accents(expr) -%}
    {{ return(adapter.dispatch('strip_accents', 'crimecast')(expr)) }}
{%- endmacro %}

{% macro duckdb__strip_accents(expr) -%}
    strip_accents({{ expr }})
{%- endmacro %}

{% macro default__strip_accents(expr) -%}
    {%- set accented = 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ'
        ~ 'ĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠš'
        ~ 'ŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǢǣǦǧǨǩǪǫǬǭǮǯǰǴǵǸǹǺǻǼǽǾǿ'
        ~ 'ȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ' -%}
    {%- set plain = 'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy'
        ~ 'AaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSs'
        ~ 'TtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuUuAaAaÆæGgKkOoOoƷʒjGgNnAaÆæØø'
        ~ 'AaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOoOoYy' -%}
    translate({{ expr }}, '{{ accented }}', '{{ plain }}')
{%- endmacro %}

{#- Replace EVERY match of the regular expression `pattern` by `replacement`. pattern and
    replacement are template strings (not SQL literals): the macro writes the literal each
    engine needs. DuckDB replaces the first match unless given 'g'; Spark's 4th argument is a
    position and its string literals read '\s' as 's' (backslashes are doubled there). The
    default (3 arguments) replaces every match on Spark, Snowflake, BigQuery and Redshift;
    Postgres would need 'g' like DuckDB. -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'crimecast')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expr, pattern, replacement) -%}
    {%- set p = dbt.string_literal(dbt.escape_single_quotes(pattern)) -%}
    {%- set r = dbt.string_literal(dbt.escape_single_quotes(replacement)) -%}
    regexp_replace({{ expr }}, {{ p }}, {{ r }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    {%- set p = dbt.string_literal(dbt.escape_single_quotes(pattern | replace('\\', '\\\\'))) -%}
    {%- set r = dbt.string_literal(dbt.escape_single_quotes(replacement | replace('\\', '\\\\'))) -%}
    regexp_replace({{ expr }}, {{ p }}, {{ r }})
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    {%- set p = dbt.string_literal(dbt.escape_single_quotes(pattern)) -%}
    {%- set r = dbt.string_literal(dbt.escape_single_quotes(replacement)) -%}
    regexp_replace({{ expr }}, {{ p }}, {{ r }})
{%- endmacro %}

{#- Whether the WHOLE of `expr` matches the regular expression `pattern` (a template string, not
    a SQL literal). DuckDB: regexp_full_match. Spark: rlike finds a match anywhere, so the
    pattern is anchored, \z being the very end (Java's $ also matches before a final line
    break); its string literals read backslashes (doubled here). NULL for a NULL expr. -#}
{% macro regexp_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'crimecast')(expr, pattern)) }}
{%- endmacro %}

{% macro duckdb__regexp_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, {{ dbt.string_literal(dbt.escape_single_quotes(pattern)) }})
{%- endmacro %}

{% macro spark__regexp_full_match(expr, pattern) -%}
    {%- set anchored = ('^(?:' ~ pattern ~ ')\\z') | replace('\\', '\\\\') -%}
    ({{ expr }} rlike {{ dbt.string_literal(dbt.escape_single_quotes(anchored)) }})
{%- endmacro %}

{% macro default__regexp_full_match(expr, pattern) -%}
    {{ exceptions.raise_compiler_error(
        'regexp_full_match: no version for adapter ' ~ adapter.type()
        ~ ' (macros/cross_database.sql has duckdb and spark)') }}
{%- endmacro %}

{#- cast(expr as type), NULL when the value does not convert. dbt.safe_cast is a plain cast
    (an error) on DuckDB and Spark (ANSI mode, Spark 4's default); both have try_cast. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'crimecast')(expr, type)) }}
{%- endmacro %}

{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro spark__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro default__try_cast(expr, type) -%}
    {{ dbt.safe_cast(expr, type) }}
{%- endmacro %}

{#- Remove the leading characters of `expr` that are in `characters` (a template string, not
    a SQL literal): ltrim('0012a0', '0') = '12a0'. Spark's ltrim takes (characters, expr), the
    other way round, and returns a wrong result without an error; the standard
    trim(leading … from …) reads the same on Spark and Postgres. -#}
{% macro ltrim_chars(expr, characters) -%}
    {{ return(adapter.dispatch('ltrim_chars', 'crimecast')(expr, characters)) }}
{%- endmacro %}

{% macro duckdb__ltrim_chars(expr, characters) -%}
    ltrim({{ expr }}, {{ dbt.string_literal(dbt.escape_single_quotes(characters)) }})
{%- endmacro %}

{% macro default__ltrim_chars(expr, characters) -%}
    trim(leading {{ dbt.string_literal(dbt.escape_single_quotes(characters)) }} from {{ expr }})
{%- endmacro %}

{#- A column type declared in a yml (serving contracts: DuckDB's names) as the engine spells
    it. Spark has no HUGEINT (its sums of bigints are bigints) and wants a length for VARCHAR
    (STRING is its unbounded text). -#}
{% macro engine_type(data_type) -%}
    {{ return(adapter.dispatch('engine_type', 'crimecast')(data_type)) }}
{%- endmacro %}

{% macro default__engine_type(data_type) -%}
    {{ return(data_type) }}
{%- endmacro %}

{% macro spark__engine_type(data_type) -%}
    {%- set spelled = {'varchar': 'string', 'text': 'string', 'hugeint': 'bigint'} -%}
    {{ return(spelled.get(data_type | trim | lower, data_type)) }}
{%- endmacro %}

{#- dbt's cast on Spark, with the declared type spelled for Spark: dbt's contract check casts
    NULL to each column's yml type (get_empty_schema_sql). -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ engine_type(type) }})
{%- endmacro %}

{#- dbt-spark's seed rows in session mode are bound by plain string formatting: a quote in a
    value ("New Year's Day") breaks the statement and NULL becomes the text 'None'. Here every
    value is a literal written by dbt's escaping (backslashes doubled: Spark literals read
    them), NULL as null. -#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
            (
                {%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name,
                        adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set value = row[loop.index0] -%}
                    {%- if value is none -%}
                        cast(null as {{ type }})
                    {%- else -%}
                        cast({{ dbt.string_literal(dbt.escape_single_quotes(
                            value | string | replace('\\', '\\\\'))) }} as {{ type }})
                    {%- endif -%}
                    {{- "," if not loop.last -}}
                {%- endfor -%}
            ){{ "," if not loop.last }}
            {%- endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{%- endmacro %}
