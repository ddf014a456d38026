"""Install crimecast's Dagster instance settings (orchestration/dagster.yaml) into DAGSTER_HOME.

`make dev` and `crimecast run` call this; a dagster.yaml already in DAGSTER_HOME is kept.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def install_dagster_yaml(home: str | os.PathLike[str]) -> bool:
    """Copy the template to `home`/dagster.yaml unless one is there; True when copied."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if target.exists():
        return False
    # a complete copy under a temporary name, then a hard link: the link fails if a file
    # appeared meanwhile, so a user's dagster.yaml is never replaced nor seen half-written
    with tempfile.NamedTemporaryFile(dir=home, prefix=".dagster.yaml.", delete=False) as tmp:
        pass
    try:
        shutil.copyfile(TEMPLATE, tmp.name)
        os.link(tmp.name, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp.name)
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    home = args[0] if args else os.environ.get("DAGSTER_HOME")
    if not home:
        print("dagster_home: give a folder or set DAGSTER_HOME", file=sys.stderr)
        return 2
    if install_dagster_yaml(home):
        print(f"installed {Path(home) / 'dagster.yaml'} (from orchestration/dagster.yaml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
