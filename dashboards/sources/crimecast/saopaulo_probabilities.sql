-- São Paulo place-type probabilities (latest run: serving.saopaulo_place_probabilities_latest)
-- with readable labels: the SSP codes arrive upper-case and without accents (REPUBLICA, TERCA,
-- MADRUGADA, Via Publica). Weekdays and periods are translated and numbered (Monday..Sunday, early
-- hours..evening) so pages sort them in that order; place types are translated with the Portuguese
-- name, accented, beside them; neighbourhoods are title-cased with their accents restored word by
-- word (an unknown word is only title-cased). The raw codes stay in their columns: inputs match on
-- them.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with accents (word, accented) as (
        values
        ('ACLIMACAO', 'Aclimação'), ('AGUA', 'Água'), ('ANGELA', 'Ângela'),
        ('BELEM', 'Belém'), ('BONIFACIO', 'Bonifácio'), ('BRAS', 'Brás'),
        ('BRASILANDIA', 'Brasilândia'), ('BUTANTA', 'Butantã'), ('CANGAIBA', 'Cangaíba'),
        ('CAPAO', 'Capão'), ('CARRAO', 'Carrão'), ('CONCEICAO', 'Conceição'),
        ('CONSOLACAO', 'Consolação'), ('CURUCA', 'Curuçá'), ('GRAJAU', 'Grajaú'),
        ('HISTORICO', 'Histórico'), ('JACANA', 'Jaçanã'), ('JACUI', 'Jacuí'),
        ('JAGUARE', 'Jaguaré'), ('JARAGUA', 'Jaraguá'), ('JD', 'Jardim'), ('JOAO', 'João'),
        ('JOSE', 'José'), ('LIDER', 'Líder'), ('LIMAO', 'Limão'), ('LUIS', 'Luís'),
        ('O', 'Ó'), ('REPUBLICA', 'República'), ('SACOMA', 'Sacomã'), ('SAO', 'São'),
        ('SAUDE', 'Saúde'), ('SE', 'Sé'), ('TATUAPE', 'Tatuapé'), ('TREMEMBE', 'Tremembé')
    ),

    particles (word) as (values ('DE'), ('DA'), ('DO'), ('DOS'), ('DAS'), ('E')),

    neighbourhoods as (
        select distinct neighbourhood from serving.saopaulo_place_probabilities_latest
    ),

    words as (
        select
            n.neighbourhood,
            w.pos,
            upper(w.word) as word
        from neighbourhoods as n,
            unnest(string_split(trim(n.neighbourhood), ' ')) with ordinality as w (word, pos)
        where w.word <> ''
    ),

    labelled as (
        select
            w.neighbourhood,
            string_agg(
                case
                    when a.accented is not null then a.accented
                    when p.word is not null and w.pos > 1 then lower(w.word)
                    else upper(w.word[1]) || lower(w.word[2:])
                end,
                ' ' order by w.pos
            ) as neighbourhood_label
        from words as w
        left join accents as a on a.word = w.word
        left join particles as p on p.word = w.word
        group by w.neighbourhood
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
        coalesce(l.neighbourhood_label, s.neighbourhood) as neighbourhood_label,
        case upper(s.weekday)
            when 'SEGUNDA' then 'Monday (segunda-feira)'
            when 'TERCA' then 'Tuesday (terça-feira)'
            when 'QUARTA' then 'Wednesday (quarta-feira)'
            when 'QUINTA' then 'Thursday (quinta-feira)'
            when 'SEXTA' then 'Friday (sexta-feira)'
            when 'SABADO' then 'Saturday (sábado)'
            when 'DOMINGO' then 'Sunday (domingo)'
            else s.weekday
        end as weekday_label,
        case upper(s.weekday)
            when 'SEGUNDA' then 1 when 'TERCA' then 2 when 'QUARTA' then 3 when 'QUINTA' then 4
            when 'SEXTA' then 5 when 'SABADO' then 6 when 'DOMINGO' then 7 else 8
        end as weekday_order,
        case upper(s.period)
            when 'MADRUGADA' then 'Early hours, 0-6 h (madrugada)'
            when 'MANHA' then 'Morning, 6-12 h (manhã)'
            when 'TARDE' then 'Afternoon, 12-18 h (tarde)'
            when 'NOITE' then 'Evening, 18-24 h (noite)'
            else 'Time not recorded (' || lower(s.period) || ')'
        end as period_label,
        case upper(s.period)
            when 'MADRUGADA' then 1 when 'MANHA' then 2 when 'TARDE' then 3 when 'NOITE' then 4
            else 5
        end as period_order,
        case s.brand when 'Outros' then 'Other brands (outros)' else s.brand end as brand_label,
        case s.place_type
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
        end as place_type_label
    from serving.saopaulo_place_probabilities_latest as s
    left join labelled as l on l.neighbourhood = s.neighbourhood
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
