{#-
    Départements that do not add up to their region beyond the tolerance
    (var france_check_tolerance, default 0.5 % of the regional count), populations that
    differ, or départements without a regional row. Severity warn: the 2024 data.gouv.fr
    release has known differences on the two "Mis en cause" drug indicators (docs/france.md).
-#}
{{ config(severity='warn') }}

select *
from {{ ref('france_departement_region_check') }}
where status in ('disagree', 'departements_only')
