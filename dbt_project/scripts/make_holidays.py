"""Generate dbt_project/seeds/holidays.csv: US federal holidays 2000-2035 (run once; the CSV is
committed).

The dates and names come from the `holidays` package (its US federal calendar, 5 U.S.C. 6103):
the actual dates and the observed weekdays of weekend holidays (names ending in "(observed)"),
every date that falls in 2000-2035.

    python dbt_project/scripts/make_holidays.py            # writes dbt_project/seeds/holidays.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import holidays

FIRST_YEAR, LAST_YEAR = 2000, 2035
OUT = Path(__file__).resolve().parents[1] / "seeds" / "holidays.csv"


def us_federal_rows() -> list[tuple[str, str, str]]:
    """(country, ISO date, name) rows, sorted; one row per holiday of a date."""
    calendar = holidays.country_holidays("US", years=range(FIRST_YEAR, LAST_YEAR + 1))
    return sorted(
        ("US", day.isoformat(), name) for day in calendar for name in calendar.get_list(day)
    )


def main() -> int:
    rows = us_federal_rows()
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["country", "date", "name"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
