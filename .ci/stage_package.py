"""Lay the `sweepctl` package out as one folder tree of symlinks, for tools that walk folders.

The design keeps `orchestrator/`, `workers/`, ... at the repository root and maps them onto
`sweepctl.*` with setuptools' package-dir (pyproject.toml). Python's import system follows
that mapping; grimp (behind `lint-imports`) and mypy instead walk the package's folder, and
would see only `cli/`. The symlinks point back at the real files, so what they report is
what is in the checkout, never a stale copy.

    python .ci/stage_package.py build/staged   # then: PYTHONPATH=build/staged lint-imports
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, Path]:
    """`sweepctl` -> cli/, `sweepctl.spec` -> spec/, ... as pyproject.toml declares them."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: REPO / folder for name, folder in mapping.items()}


def stage(target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    dirs = package_dirs()
    root = target / "sweepctl"
    root.mkdir(parents=True)
    for source in sorted(dirs["sweepctl"].glob("*.py")):
        (root / source.name).symlink_to(source)
    for name, folder in dirs.items():
        if name != "sweepctl":
            (target / name.replace(".", "/")).symlink_to(folder, target_is_directory=True)
    return root


if __name__ == "__main__":
    print(stage(Path(sys.argv[1]).resolve()))
