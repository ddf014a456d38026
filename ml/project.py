"""The vars of the dbt project (``dbt_project/dbt_project.yml``) that Python reads too: a rule
both the SQL and the Python use is written once, there (the daily feature lags and windows,
the small-cell k)."""

from __future__ import annotations

from pathlib import Path

DBT_PROJECT_FILE = Path(__file__).resolve().parents[1] / "dbt_project" / "dbt_project.yml"


def dbt_project_var(name: str):
    """A var of dbt_project.yml (plain values only: a Jinja expression comes back as text)."""
    import yaml

    with DBT_PROJECT_FILE.open(encoding="utf-8") as f:
        project = yaml.safe_load(f)
    if name not in (project.get("vars") or {}):
        raise KeyError(f"{DBT_PROJECT_FILE} defines no var {name!r}")
    return project["vars"][name]
