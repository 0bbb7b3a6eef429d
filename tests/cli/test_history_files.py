"""History files that are not ours, not writable or too new: one line
naming the file, and the file left exactly as it was."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from check_itop_backup.history import MIGRATIONS
from tests.checkrun import place_archive, run_check
from tests.cli.test_bad_input import run_backup_cli


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_file(path: Path, *statements: str) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    return path


def probe(tmp_path: Path, history: Path):
    place_archive(tmp_path / "itop-2026-11-26.tar.gz", datetime(2026, 11, 26, 23, 40))
    return run_check("-f", tmp_path / "itop-%Y-%m-%d", "--now", "2026-11-27T10:00", "--history", history)


def siblings(history: Path) -> list[str]:
    return sorted(p.name for p in history.parent.iterdir() if p.name.startswith(history.name))


@pytest.mark.parametrize("statements, reason", [
    (["CREATE TABLE notes (text)", "INSERT INTO notes VALUES ('mine')"],
     "not a check_itop_backup history (it has other tables: notes)"),
    (["CREATE TABLE archives (id)", "PRAGMA user_version = 1"],
     "tables runs, tickets, verifications are missing (not a check_itop_backup history, or damaged)"),
    (["CREATE TABLE archives (id)", "PRAGMA user_version = 7"],  # not in WAL mode: switching would write
     f"its schema version 7 is newer than this program's ({len(MIGRATIONS)}); upgrade check_itop_backup"),
], ids=["foreign", "missing tables", "newer schema"])
def test_a_history_that_is_not_ours_is_refused_untouched(tmp_path, statements, reason, capsys):
    (tmp_path / "elsewhere").mkdir()
    history = sqlite_file(tmp_path / "elsewhere" / "history.sqlite", *statements)
    before = digest(history)

    run = probe(tmp_path, history)
    listed = run_backup_cli(["history", "--history", history])

    assert (run.exit_code, run.stdout) == (3, f"ITOP_BACKUP UNKNOWN - cannot use history {history}: "
                                              f"{reason}\n")
    assert (listed, capsys.readouterr().err) == (1, f"itop-backup: cannot use history {history}: {reason}\n")
    assert digest(history) == before
    assert siblings(history) == ["history.sqlite"]


@pytest.fixture
def read_only_history(tmp_path):
    """A history in WAL mode with one archive, in a directory and a file nobody may write
    (chattr +i: root too)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    history = directory / "history.sqlite"
    assert probe(tmp_path, history).exit_code == 0
    assert siblings(history) == ["history.sqlite"]
    subprocess.run(["chattr", "+i", str(history), str(directory)], check=True)
    try:
        yield history
    finally:
        subprocess.run(["chattr", "-i", str(history), str(directory)], check=True)


def test_a_read_only_history_is_read_without_leaving_wal_or_shm_files(read_only_history, tmp_path, capsys):
    before = digest(read_only_history)

    listed = run_backup_cli(["history", "--history", read_only_history, "--format", "csv"])
    run = probe(tmp_path, read_only_history)

    out, err = capsys.readouterr()
    assert (listed, err) == (0, "")
    assert f",archive,ok,{tmp_path}/itop-2026-11-26.tar.gz,1158231," in out.splitlines()[1]
    assert (run.exit_code, run.stdout) == (3, f"ITOP_BACKUP UNKNOWN - cannot write history "
                                              f"{read_only_history}: attempt to write a readonly database\n")
    assert siblings(read_only_history) == ["history.sqlite"]
    assert digest(read_only_history) == before
