"""The machine, not the spec, is wrong: a read-only or full disk, a missing database driver,
a finished sweep cancelled. Each is one line and exit 2, never a traceback; and a store
that can only be read still answers status, list, show and export. The disks are real
tmpfs mounts (the test machine runs as root)."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweepctl.cli import main
from tests.fault_helpers import ANALYTIC, analytic_grid_spec


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: remount it read-only, or fill it, to make the disk the problem."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweepctl: error: "), err
    assert "Traceback" not in err
    return lines[0]


def finished_sweep(tmp_path: Path, url: str, name: str = "done") -> None:
    spec = analytic_grid_spec(tmp_path / f"{name}.yaml", name, 2)
    assert (
        main(["launch", str(spec), "--db", url, "--backend", "inline", "--runner", ANALYTIC]) == 0
    )


def test_a_read_only_copy_of_a_store_answers_status_list_show_and_export(
    tmp_path: Path, home: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished_sweep(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    copy = small_disk / "copy.db"
    live, target = sqlite3.connect(tmp_path / "store.db"), sqlite3.connect(copy)
    live.backup(target)  # a consistent copy of a live WAL database
    live.close()
    target.close()
    remount_read_only(small_disk)
    url = f"sqlite:///{small_disk / 'copy.db'}"
    capsys.readouterr()
    assert main(["status", "done", "--db", url]) == 0
    assert "grid" in capsys.readouterr().out
    assert main(["list", "--db", url]) == 0
    assert "done" in capsys.readouterr().out
    assert main(["show", "1", "--db", url, "--json"]) == 0
    assert '"state": "COMPLETED"' in capsys.readouterr().out
    assert main(["export", "done", "--db", url, "--format", "json"]) == 0
    assert "learning_rate" in capsys.readouterr().out


def test_a_launch_onto_a_read_only_disk_is_one_line(
    tmp_path: Path, home: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remount_read_only(small_disk)
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "ro", 1)
    url = f"sqlite:///{small_disk / 'new' / 'store.db'}"
    args = ["launch", str(spec), "--db", url, "--backend", "inline", "--runner", ANALYTIC]
    assert main(args) == 2
    assert "Read-only file system" in one_error_line(capsys)


def test_a_full_disk_is_one_line_naming_it(
    tmp_path: Path, home: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{small_disk / 'store.db'}"
    finished_sweep(tmp_path, url, "first")  # the schema and a sweep fit
    filler = small_disk / "filler"
    with filler.open("wb") as handle, pytest.raises(OSError):  # ENOSPC: the disk is full
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "second", 6)
    capsys.readouterr()
    args = ["launch", str(spec), "--db", url, "--backend", "inline", "--runner", ANALYTIC]
    assert main(args) == 2
    assert "database or disk is full" in one_error_line(capsys)


def test_a_database_url_whose_driver_is_missing_is_one_line(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--db", "mysql+pymysql://user@127.0.0.1/sweeps"]) == 2
    line = one_error_line(capsys)
    assert "driver is not installed" in line and "pymysql" in line


def test_cancel_of_a_finished_sweep_is_one_line_and_exit_2(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    finished_sweep(tmp_path, url)
    capsys.readouterr()
    assert main(["cancel", "done", "--db", url]) == 2
    assert "already COMPLETED; nothing to cancel" in one_error_line(capsys)
