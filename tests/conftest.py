"""Shared test fixtures (keep small and generic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real public extracts beside the project (never copied into it): ../shared/data
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> Path:
    """Path of a fresh DuckDB warehouse file in its own temporary folder (not created yet)."""
    folder = tmp_path / "warehouse"
    folder.mkdir()
    return folder / "crimecast.duckdb"


@pytest.fixture
def warehouse_con(tmp_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open connection to `tmp_warehouse`, closed after the test."""
    con = duckdb.connect(str(tmp_warehouse))
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def shared_data() -> Path:
    """The real extracts folder; tests using it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data extracts not available at {SHARED_DATA}")
    return SHARED_DATA
