"""Generate seeds/holidays.csv: US federal holidays 2000-2035 (run once; the CSV is committed).

Rules (5 U.S.C. 6103): fixed-date holidays falling on a Saturday are observed on the Friday
before, on a Sunday the Monday after; both the actual and the observed date are written (the
observed row's name ends in "(observed)"). Juneteenth is a federal holiday from 2021.

    python dbt_project/scripts/make_holidays.py            # writes seeds/holidays.csv
"""

from __future__ import annotations

import csv
import sys
from datetime import date, timedelta
from pathlib import Path

FIRST_YEAR, LAST_YEAR = 2000, 2035
OUT = Path(__file__).resolve().parents[2] / "seeds" / "holidays.csv"
MON, THU = 0, 3


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) given weekday of a month; n = -1 is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def us_federal(year: int) -> list[tuple[date, str]]:
    fixed = [
        (date(year, 1, 1), "New Year's Day"),
        (date(year, 7, 4), "Independence Day"),
        (date(year, 11, 11), "Veterans Day"),
        (date(year, 12, 25), "Christmas Day"),
    ]
    if year >= 2021:
        fixed.append((date(year, 6, 19), "Juneteenth National Independence Day"))
    floating = [
        (nth_weekday(year, 1, MON, 3), "Birthday of Martin Luther King, Jr."),
        (nth_weekday(year, 2, MON, 3), "Washington's Birthday"),
        (nth_weekday(year, 5, MON, -1), "Memorial Day"),
        (nth_weekday(year, 9, MON, 1), "Labor Day"),
        (nth_weekday(year, 10, MON, 2), "Columbus Day"),
        (nth_weekday(year, 11, THU, 4), "Thanksgiving Day"),
    ]
    rows = list(floating)
    for day, name in fixed:
        rows.append((day, name))
        if observed(day) != day:
            rows.append((observed(day), f"{name} (observed)"))
    return rows


def main() -> int:
    rows = sorted(
        ("US", day.isoformat(), name)
        for year in range(FIRST_YEAR, LAST_YEAR + 1)
        for day, name in us_federal(year)
    )
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["country", "date", "name"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
