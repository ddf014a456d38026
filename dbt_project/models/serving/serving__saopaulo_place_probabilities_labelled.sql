-- São Paulo place-type probabilities of the latest run
-- (serving.saopaulo_place_probabilities_latest, small cells already withheld) with readable
-- labels: the SSP codes arrive upper-case and without accents (REPUBLICA, TERCA, MADRUGADA, Via
-- Publica). Weekdays and periods are translated and numbered (Monday..Sunday, early
-- hours..evening) so pages sort them in that order; place types are translated with the
-- Portuguese name, accented, beside them; neighbourhoods are title-cased with their accents
-- restored word by word (an unknown word is only title-cased, a particle after the first word is
-- lower-case). The raw codes stay in their columns: inputs match on them.
-- Portable SQL: the words are split_part's (DuckDB, Spark 3.3+, Postgres, Snowflake) at the
-- positions 1..max_words and joined back by concat_ws (which skips NULLs); a name of more words
-- than that keeps its code as its label rather than lose words.
{%- set max_words = 12 %}
{%- set accents = {
    'ACLIMACAO': 'Aclimação', 'AGUA': 'Água', 'ANGELA': 'Ângela', 'BELEM': 'Belém',
    'BONIFACIO': 'Bonifácio', 'BRAS': 'Brás', 'BRASILANDIA': 'Brasilândia',
    'BUTANTA': 'Butantã', 'CANGAIBA': 'Cangaíba', 'CAPAO': 'Capão', 'CARRAO': 'Carrão',
    'CONCEICAO': 'Conceição', 'CONSOLACAO': 'Consolação', 'CURUCA': 'Curuçá',
    'GRAJAU': 'Grajaú', 'HISTORICO': 'Histórico', 'JACANA': 'Jaçanã', 'JACUI': 'Jacuí',
    'JAGUARE': 'Jaguaré', 'JARAGUA': 'Jaraguá', 'JD': 'Jardim', 'JOAO': 'João',
    'JOSE': 'José', 'LIDER': 'Líder', 'LIMAO': 'Limão', 'LUIS': 'Luís', 'O': 'Ó',
    'REPUBLICA': 'República', 'SACOMA': 'Sacomã', 'SAO': 'São', 'SAUDE': 'Saúde', 'SE': 'Sé',
    'TATUAPE': 'Tatuapé', 'TREMEMBE': 'Tremembé'
} %}
{%- set particles = ['DE', 'DA', 'DO', 'DOS', 'DAS', 'E'] %}
{%- set word_at = [] %}
{%- for k in range(1, max_words + 1) %}
{%- do word_at.append('max(case when pos = ' ~ k ~ ' then label end)') %}
{%- endfor %}
with probabilities as (
    select * from {{ ref('serving__saopaulo_place_probabilities_latest') }}
),

neighbourhoods as (
    select distinct neighbourhood from probabilities
),

-- one more position than max_words: a word there means the name is too long to label
positions as (
    {%- for k in range(1, max_words + 2) %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select {{ k }} as pos
    {%- endfor %}
),

words as (
    select
        n.neighbourhood,
        p.pos,
        upper(split_part(trim(n.neighbourhood), ' ', p.pos)) as word
    from neighbourhoods as n
    cross join positions as p
),

word_labels as (
    select
        neighbourhood,
        pos,
        case
            {%- for word, accented in accents.items() %}
            when word = '{{ word }}' then '{{ accented }}'
            {%- endfor %}
            when pos > 1 and word in {{ sql_string_list(particles) }} then lower(word)
            else upper(substring(word, 1, 1)) || lower(substring(word, 2))
        end as label
    from words
    where word <> ''
),

labelled as (
    select
        neighbourhood,
        case
            when max(pos) <= {{ max_words }}
                then concat_ws(' ', {{ word_at | join(', ') }})
        end as neighbourhood_label
    from word_labels
    group by neighbourhood
)

select
    s.run_id,
    s.neighbourhood,
    s.weekday,
    s.period,
    s.brand,
    s.place_type,
    s.probability,
    s.rank,
    s.n_records,
    cast(coalesce(l.neighbourhood_label, s.neighbourhood) as {{ engine_type('varchar') }})
        as neighbourhood_label,
    cast(case upper(s.weekday)
        when 'SEGUNDA' then 'Monday (segunda-feira)'
        when 'TERCA' then 'Tuesday (terça-feira)'
        when 'QUARTA' then 'Wednesday (quarta-feira)'
        when 'QUINTA' then 'Thursday (quinta-feira)'
        when 'SEXTA' then 'Friday (sexta-feira)'
        when 'SABADO' then 'Saturday (sábado)'
        when 'DOMINGO' then 'Sunday (domingo)'
        else s.weekday
    end as {{ engine_type('varchar') }}) as weekday_label,
    cast(case upper(s.weekday)
        when 'SEGUNDA' then 1 when 'TERCA' then 2 when 'QUARTA' then 3 when 'QUINTA' then 4
        when 'SEXTA' then 5 when 'SABADO' then 6 when 'DOMINGO' then 7 else 8
    end as {{ engine_type('integer') }}) as weekday_order,
    cast(case upper(s.period)
        when 'MADRUGADA' then 'Early hours, 0-6 h (madrugada)'
        when 'MANHA' then 'Morning, 6-12 h (manhã)'
        when 'TARDE' then 'Afternoon, 12-18 h (tarde)'
        when 'NOITE' then 'Evening, 18-24 h (noite)'
        else 'Time not recorded (' || lower(s.period) || ')'
    end as {{ engine_type('varchar') }}) as period_label,
    cast(case upper(s.period)
        when 'MADRUGADA' then 1 when 'MANHA' then 2 when 'TARDE' then 3 when 'NOITE' then 4
        else 5
    end as {{ engine_type('integer') }}) as period_order,
    cast(
        case s.brand when 'Outros' then 'Other brands (outros)' else s.brand end
        as {{ engine_type('varchar') }}
    ) as brand_label,
    cast(case s.place_type
        when 'Via Publica' then 'Street or other public way (via pública)'
        when 'Transporte Publico' then 'Public transport (transporte público)'
        when 'Residencia / Hospedagem' then 'Home or lodging (residência / hospedagem)'
        when 'Estabelecimentos Comerciais / Industrias'
            then 'Shop, business or factory (estabelecimentos comerciais / indústrias)'
        when 'Transporte Privado' then 'Private vehicle (transporte privado)'
        when 'Alimentacao' then 'Restaurant, bar or café (alimentação)'
        when 'Entreterimento' then 'Entertainment venue (entretenimento)'
        when 'Saude' then 'Health care (saúde)'
        when 'Escolas / Universidade' then 'School or university (escolas / universidade)'
        when 'Escritorios' then 'Office (escritórios)'
        else s.place_type
    end as {{ engine_type('varchar') }}) as place_type_label
from probabilities as s
left join labelled as l on s.neighbourhood = l.neighbourhood
