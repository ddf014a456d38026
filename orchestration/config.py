"""Paths and settings, all from the environment (see docs/architecture.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES_DIR = REPO_ROOT / "sources"
SEEDS_DIR = REPO_ROOT / "seeds"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "crimecast.duckdb"


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p)


@dataclass(frozen=True)
class Settings:
    warehouse: Path
    sources: list[str] | None
    cutoff: date | None
    horizon: int

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse.parent

    @property
    def sample_dir(self) -> Path:
        return self.warehouse_dir / "sample"

    @property
    def artifacts_dir(self) -> Path:
        return self.warehouse_dir / "artifacts"

    @property
    def download_dir(self) -> Path:
        return self.warehouse_dir / "downloads"

    @property
    def published(self) -> Path:
        """The read-only copy readers use (`CRIMECAST_PUBLISHED`, default
        `<warehouse dir>/published/<warehouse file name>`); replaced atomically after a run."""
        value = os.environ.get("CRIMECAST_PUBLISHED", "").strip()
        return _resolve(value) if value else self.warehouse_dir / "published" / self.warehouse.name

    def input_for(self, source: str) -> str | None:
        """`CRIMECAST_INPUT_<SOURCE>`: a file, folder, glob or URL; None → the mapping's default."""
        value = os.environ.get(f"CRIMECAST_INPUT_{source.upper()}", "").strip()
        return value or None


def settings() -> Settings:
    """Read the settings now (tests change the environment between calls)."""
    warehouse = _resolve(os.environ.get("CRIMECAST_WAREHOUSE") or DEFAULT_WAREHOUSE)
    names = os.environ.get("CRIMECAST_SOURCES", "").strip()
    cutoff = os.environ.get("CRIMECAST_CUTOFF", "").strip()
    try:
        parsed_cutoff = date.fromisoformat(cutoff) if cutoff else None
    except ValueError as exc:
        raise ValueError(f"CRIMECAST_CUTOFF={cutoff!r} is not a date (YYYY-MM-DD)") from exc
    horizon = os.environ.get("CRIMECAST_HORIZON", "28").strip() or "28"
    if not horizon.isdigit() or int(horizon) < 1:
        raise ValueError(f"CRIMECAST_HORIZON={horizon!r} must be a positive whole number of days")
    return Settings(
        warehouse=warehouse,
        sources=[n.strip() for n in names.split(",") if n.strip()] or None,
        cutoff=parsed_cutoff,
        horizon=int(horizon),
    )


def export_for_dbt() -> Settings:
    """dbt reads CRIMECAST_WAREHOUSE from the environment: give it the absolute path."""
    s = settings()
    os.environ["CRIMECAST_WAREHOUSE"] = str(s.warehouse)
    s.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return s
