{#-
    The source tables (raw.*, ml.*) of an engine that does not read the DuckDB file: Parquet
    files registered as tables (ingest/parquet.py writes them and runs this):

        dbt run-operation register_parquet_tables --target spark \
            --args '{tables: [{schema: raw, name: incidents, path: /abs/raw/incidents,
                               partitioned: true}]}'

    Each table is replaced (dropped, then created over its folder; `partitioned`: the folder
    holds Hive-style partitions, e.g. source=boston/, recovered into the metastore). Spark: an unmanaged table
    `USING parquet LOCATION` (dropping it leaves the file). DuckDB reads its own tables, so it
    has no variant.
-#}
{% macro register_parquet_tables(tables) -%}
    {{ return(adapter.dispatch('register_parquet_tables', 'crimecast')(tables)) }}
{%- endmacro %}

{% macro default__register_parquet_tables(tables) -%}
    {{ exceptions.raise_compiler_error(
        'register_parquet_tables: no implementation for adapter ' ~ adapter.type()
        ~ ' (the DuckDB target reads raw.* and ml.* from its own file)') }}
{%- endmacro %}

{% macro spark__register_parquet_tables(tables) -%}
    {%- for schema in tables | map(attribute='schema') | unique -%}
        {%- do run_query('create schema if not exists ' ~ schema) -%}
    {%- endfor -%}
    {%- for table in tables -%}
        {%- set name = table.schema ~ '.' ~ table.name -%}
        {%- do run_query('drop table if exists ' ~ name) -%}
        {#- a folder of Hive-style partitions (source=boston/…): Spark infers the partition
            column on create (a PARTITIONED BY clause would need an explicit column list) but
            lists no partition in the metastore until it is told to look -#}
        {%- do run_query('create table ' ~ name ~ ' using parquet location '
            ~ dbt.string_literal(dbt.escape_single_quotes(table.path))) -%}
        {%- if table.get('partitioned') -%}
            {%- do run_query('alter table ' ~ name ~ ' recover partitions') -%}
        {%- endif -%}
    {%- endfor -%}
    {{ log(tables | length ~ ' Parquet tables registered', info=true) }}
{%- endmacro %}
