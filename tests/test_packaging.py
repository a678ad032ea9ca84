"""The distribution installs one import name, `sweepctl`, and keeps its layers.

Release 0.1.0 installed top-level `orchestrator`, `workers`, `storage` and `service`, names
that any other project on the path can also own. These tests build the real wheel, run a
real sweep on Ray with foreign packages of those names first on the path, and run the real
`lint-imports` on a staged copy with a deliberate layer violation.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest

from sweepctl.storage import Store, SweepState, TrialState
from tests.conftest import REPO
from tests.fault_helpers import analytic_grid_spec

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Generated or heavy folders a build never reads; copying them would only cost time.
NOT_SOURCE = {".git", ".venv", "build", "dist", "sweepctl-runs", "wandb", "node_modules"}
NOT_SOURCE |= {".pytest_cache", ".ruff_cache", ".mypy_cache", ".import_linter_cache"}


# --- the wheel ------------------------------------------------------------------------


def _source_copy(target: Path) -> Path:
    """The checkout without generated folders: setuptools' build/lib keeps files from earlier
    builds (which would leak into the wheel), and an in-tree build would race other builds."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == REPO
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skipped | ({n for n in names if n in NOT_SOURCE} if top else set())

    shutil.copytree(REPO, target, ignore=ignore, symlinks=True)
    return target


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every file path inside a wheel freshly built from the checkout's sources."""
    work = tmp_path_factory.mktemp("wheel")
    source = _source_copy(work / "source")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "-q", "-w", str(work / "out"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "out").glob("sweepctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _packaged(names: list[str]) -> list[PurePosixPath]:
    return [PurePosixPath(n) for n in names if not n.split("/")[0].endswith(".dist-info")]


def test_the_wheel_installs_exactly_one_top_level_import_name(wheel_names: list[str]) -> None:
    assert {path.parts[0] for path in _packaged(wheel_names)} == {"sweepctl"}


def test_every_folder_of_python_modules_in_the_wheel_is_a_package(wheel_names: list[str]) -> None:
    paths = _packaged(wheel_names)
    folders = {p.parent for p in paths if p.suffix == ".py"}
    assert PurePosixPath("sweepctl/orchestrator") in folders  # the walk saw the subpackages
    assert {f for f in folders if f / "__init__.py" not in paths} == set()


def _checkout_modules() -> set[PurePosixPath]:
    """Where each module of the mapped folders must land: cli/x.py -> sweepctl/x.py, ..."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for path in (REPO / folder).rglob("*.py"):
            relative = path.relative_to(REPO / folder)
            if "__pycache__" not in relative.parts:
                found.add(PurePosixPath(*name.split("."), *relative.parts))
    return found


def test_the_wheel_holds_every_module_of_the_checkouts_package_folders(
    wheel_names: list[str],
) -> None:
    """An explicit `packages` list silently leaves out a new subpackage's folder."""
    modules = _checkout_modules()
    assert PurePosixPath("sweepctl/storage/migrations/versions/0001_initial.py") in modules
    assert sorted(map(str, modules - set(_packaged(wheel_names)))) == []


def _repo_files(folder: str, pattern: str) -> set[str]:
    return {p.name for p in (REPO / folder).glob(pattern) if p.is_file()}


def test_the_wheel_carries_every_migration_and_the_service_templates_and_assets(
    wheel_names: list[str],
) -> None:
    def inside(folder: str) -> set[str]:
        return {p.name for p in _packaged(wheel_names) if str(p.parent) == folder}

    migrations = inside("sweepctl/storage/migrations")
    assert {"env.py", "script.py.mako", "__init__.py"} <= migrations
    versions = _repo_files("storage/migrations/versions", "*.py")
    assert "0001_initial.py" in versions and versions <= inside(
        "sweepctl/storage/migrations/versions"
    )
    for folder in ("templates", "assets"):
        expected = _repo_files(f"service/{folder}", "*")
        assert expected and expected <= inside(f"sweepctl/service/{folder}"), folder


# --- foreign packages named like the old top-level ones --------------------------------

FOREIGN_INIT = '"""Someone else\'s {name} package; sweepctl must never import it."""\n'
FOREIGN_MODULE = (
    'raise ImportError("foreign {name}.{module} imported: sweepctl reached for the "\n'
    '                  "top-level name {name} instead of sweepctl.{name}")\n'
)
# The trial's runner: on the Ray worker it checks the clash is live there too, then runs
# the analytic objective (tests/analytic.py) unchanged.
PROBE = """\
import importlib.util
import os

FOREIGN = os.path.dirname(os.path.abspath(__file__))


def run(job, sinks):
    for name in ("workers", "storage"):
        origin = importlib.util.find_spec(name).origin
        if not origin.startswith(FOREIGN + os.sep):
            raise RuntimeError(f"top-level {name!r} on this worker is {origin}, not foreign")
    from tests.analytic import run as analytic

    return analytic(job, sinks)
"""


def _foreign_packages(root: Path) -> Path:
    """`workers` and `storage` packages whose modules named like sweepctl's raise on import."""
    for name, modules in {"workers": ("job", "trial"), "storage": ("rows", "store")}.items():
        package = root / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(FOREIGN_INIT.format(name=name))
        for module in modules:
            (package / f"{module}.py").write_text(FOREIGN_MODULE.format(name=name, module=module))
    (root / "clash_probe.py").write_text(PROBE)
    return root


def _clash_environment(foreign: Path, home: Path) -> dict[str, str]:
    """The foreign folder FIRST on PYTHONPATH; the checkout after it for tests.analytic."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(foreign), str(REPO)]),
        "SWEEPCTL_HOME": str(home),
        "SWEEPCTL_REPLAY_STEP_SECONDS": "0.05",
    }
    environment.pop("RAY_ADDRESS", None)  # a private Ray, never a cluster someone else runs
    environment.pop("SWEEPCTL_DB", None)
    return environment


def _python(code: str, cwd: Path, environment: dict[str, str]) -> str:
    """Run `code` in a process started like the CLI below; its stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True
    )
    return done.stdout + done.stderr


def _launch(spec: Path, url: str, cwd: Path, environment: dict[str, str]) -> str:
    """`python -m sweepctl launch` on a private Ray; its stderr, after asserting exit 0."""
    args = ["launch", str(spec), "--db", url, "--backend", "ray"]
    launched = subprocess.run(
        [sys.executable, "-m", "sweepctl", *args, "--runner", "python:clash_probe:run"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    return launched.stderr


def test_foreign_workers_and_storage_packages_first_on_the_path_do_not_break_a_ray_sweep(
    tmp_path: Path,
) -> None:
    foreign = _foreign_packages(tmp_path / "foreign")
    elsewhere = tmp_path / "cwd"  # not the checkout: `-m` would put its folders first
    elsewhere.mkdir()
    environment = _clash_environment(foreign, tmp_path / "home")
    for name, module in (("workers", "job"), ("storage", "rows")):  # live on the driver
        where = _python(f"import {name}; print({name}.__file__)", elsewhere, environment)
        assert where.strip() == str(foreign / name / "__init__.py")
        failure = _python(f"import {name}.{module}", elsewhere, environment)
        assert f"ImportError: foreign {name}.{module} imported" in failure

    url = f"sqlite:///{tmp_path / 'store.db'}"
    _launch(
        analytic_grid_spec(tmp_path / "clash.yaml", "clash", points=3), url, elsewhere, environment
    )
    with Store(url, read_only=True) as store:
        assert store.get_sweep("clash").state is SweepState.COMPLETED
        trials = store.list_trials("clash")
    assert [t.state for t in trials] == [TrialState.COMPLETED] * 3, [t.error for t in trials]
    assert all(t.resources["ray_gcs"] for t in trials)  # they ran on Ray workers (the probe)


# --- lint-imports ---------------------------------------------------------------------


def _stage_module() -> ModuleType:
    """.ci/stage_package.py, the staging `make lint` uses (.ci is not a package)."""
    spec = importlib.util.spec_from_file_location("stage_package", REPO / ".ci/stage_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layers_contract_name() -> str:
    (layers,) = [c["name"] for c in _contracts() if c["type"] == "layers"]
    return layers


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """The command `make lint` runs, inside `tree`."""
    command = [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"]
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        command, cwd=tree, env=environment, capture_output=True, text=True, timeout=120
    )


def _verdicts(output: str) -> dict[str, str]:
    """Each contract's KEPT/BROKEN line in the summary, by contract name."""
    found = {}
    for contract in _contracts():
        for verdict in ("KEPT", "BROKEN"):
            if f"{contract['name']} {verdict}" in output:
                found[contract["name"]] = verdict
    return found


def test_the_staged_checkout_keeps_the_layers_contract(tmp_path: Path) -> None:
    tree = tmp_path / "staged"
    _stage_module().stage(tree)
    result = _lint_imports(tree)
    verdicts = _verdicts(result.stdout)
    assert verdicts.keys() == {c["name"] for c in _contracts()}, result.stdout + result.stderr
    assert verdicts[_layers_contract_name()] == "KEPT", result.stdout
    assert (result.returncode == 0) == ("BROKEN" not in verdicts.values()), result.stdout


def test_a_spec_module_importing_the_orchestrator_breaks_the_layers_contract(
    tmp_path: Path,
) -> None:
    links = tmp_path / "links"
    _stage_module().stage(links)
    tree = tmp_path / "copy"  # real files: the bad module must never land in the checkout
    shutil.copytree(links, tree, ignore=shutil.ignore_patterns("__pycache__"))
    bad = tree / "sweepctl" / "spec" / "_bad.py"
    assert not bad.parent.is_symlink() and not bad.parent.resolve().is_relative_to(REPO)
    bad.write_text('"""The ground floor reaching up."""\n\nimport sweepctl.orchestrator\n')

    result = _lint_imports(tree)
    assert result.returncode != 0
    assert _verdicts(result.stdout)[_layers_contract_name()] == "BROKEN", result.stdout
    assert "sweepctl.spec._bad -> sweepctl.orchestrator" in result.stdout


def _recipe(makefile: str, target: str) -> list[str]:
    """The tab-indented command lines under `target:`."""
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_lint_stages_the_package_and_runs_lint_imports_on_the_project_config() -> None:
    recipe = _recipe((REPO / "Makefile").read_text(), "lint")
    staging = [i for i, line in enumerate(recipe) if ".ci/stage_package.py" in line]
    linting = [i for i, line in enumerate(recipe) if "/lint-imports " in line]
    assert staging and linting and staging[0] < linting[0], recipe
    assert "pyproject.toml" in recipe[linting[0]]
