"""Checks on ml/forecasts (issue 15), on the latest forecasting run of every source it holds
(how recently raw/incidents was loaded is its FreshnessPolicy, orchestration/defs/incidents/raw.py):

* ``forecasts_non_negative``: no point forecast nor interval bound below 0 (counts);
* ``forecasts_within_bands``: lo_95 ≤ lo_80 ≤ forecast ≤ hi_80 ≤ hi_95 on every row;
* ``forecasts_complete``: every series the marts select (marts.daily_features) has a forecast
  for every step 1 … horizon of that run, once.

ERROR and blocking: the published copy waits for them. A source skipped by the ML step (too
little history) has no forecasts and is not checked here (ml.source_status says why).
"""

from __future__ import annotations

import dagster as dg

from orchestration.resources import WarehouseResource

FORECASTS = dg.AssetKey(["ml", "forecasts"])
CHECKS = ("forecasts_non_negative", "forecasts_within_bands", "forecasts_complete")

#: the latest run per source (run ids sort by time), with its horizon from ml.source_status
_LATEST = """
with latest as (
    select source, max(run_id) as run_id from ml.forecasts group by source
)
select f.* from ml.forecasts as f inner join latest using (source, run_id)
"""


def _examples(rows: list[tuple], shown: int = 3) -> str:
    return "; ".join(" ".join(str(v) for v in r) for r in rows[:shown])


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=FORECASTS, blocking=True, description=desc)
        for name, desc in zip(
            CHECKS,
            (
                "No forecast or interval bound below 0 (latest run per source).",
                "lo_95 ≤ lo_80 ≤ forecast ≤ hi_80 ≤ hi_95 on every row (latest run per source).",
                "Every series the marts select is forecast for every step 1 … horizon, once "
                "(latest run per source).",
            ),
            strict=True,
        )
    ],
)
def forecast_checks(warehouse: WarehouseResource):
    with warehouse.connect(read_only=True) as con:
        have = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'ml' and table_name = 'forecasts'"
        ).fetchone()[0]
        if not have:
            for name in CHECKS:
                yield dg.AssetCheckResult(
                    check_name=name, passed=True, description="no forecasts yet"
                )
            return
        con.execute(f"create temp view latest_forecasts as {_LATEST}")
        negative = con.execute(
            "select source, series_id, date::varchar from latest_forecasts where forecast < 0 "
            "or forecast_lo_80 < 0 or forecast_lo_95 < 0 order by all"
        ).fetchall()
        outside = con.execute(
            "select source, series_id, date::varchar from latest_forecasts where not ("
            "forecast_lo_95 <= forecast_lo_80 and forecast_lo_80 <= forecast "
            "and forecast <= forecast_hi_80 and forecast_hi_80 <= forecast_hi_95) "
            "or forecast is null order by all"
        ).fetchall()
        # the run's horizon is the largest step it forecast for any series of the source
        incomplete = con.execute(
            """
            with runs as (
                select source, run_id, max(horizon) as horizon
                from latest_forecasts group by source, run_id
            ),
            expected as (
                select distinct r.source, d.series_id, r.horizon
                from runs as r
                inner join marts.daily_features as d on d.source = r.source
            ),
            got as (
                select source, series_id, count(*) as n, count(distinct horizon) as steps
                from latest_forecasts group by source, series_id
            )
            select e.source, e.series_id, coalesce(g.n, 0), e.horizon
            from expected as e left join got as g using (source, series_id)
            where coalesce(g.n, 0) <> e.horizon or coalesce(g.steps, 0) <> e.horizon
            order by all
            """
        ).fetchall()
        n_rows = con.execute("select count(*) from latest_forecasts").fetchone()[0]
    yield dg.AssetCheckResult(
        check_name="forecasts_non_negative",
        passed=not negative,
        description=f"{len(negative)} row(s) below 0: {_examples(negative)}"
        if negative
        else f"{n_rows} rows, none below 0",
        metadata={"rows_checked": n_rows, "rows_failed": len(negative)},
    )
    yield dg.AssetCheckResult(
        check_name="forecasts_within_bands",
        passed=not outside,
        description=f"{len(outside)} row(s) outside their bands: {_examples(outside)}"
        if outside
        else f"{n_rows} rows, every forecast inside its nested 80/95 % bands",
        metadata={"rows_checked": n_rows, "rows_failed": len(outside)},
    )
    yield dg.AssetCheckResult(
        check_name="forecasts_complete",
        passed=not incomplete,
        description=(
            f"{len(incomplete)} series without one forecast per step: "
            + "; ".join(f"{s} {sid}: {n} of {h}" for s, sid, n, h in incomplete[:3])
        )
        if incomplete
        else "every selected series forecast for every step",
        metadata={"series_failed": len(incomplete)},
    )


forecast_check_defs = [forecast_checks]
