"""A backup being written is reported as such, never as missing, and opens no ticket; the
runner's archives are judged the moment they appear."""

from __future__ import annotations

import fcntl
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.backup.test_run import populate, run_cli, write_itop
from tests.checkrun import place_archive, run_check
from tests.cli.test_check_tickets import PASSWORD, write_params

PARIS = ZoneInfo("Europe/Paris")
FRIDAY_EVENING = datetime(2026, 11, 27, 23, 35, tzinfo=PARIS)  # Friday's 23:30 backup runs, Thursday's due
SATURDAY_NIGHT = datetime(2026, 11, 28, 2, 0, tzinfo=PARIS)  # Friday's backup past its 2h grace


def check(tmp_path: Path, pattern: str, now: datetime, *extra: str):
    return run_check("-f", tmp_path / pattern, "--db-name", "itop", "--timezone", "Europe/Paris",
                     "--now", now.isoformat(), *extra)


@pytest.fixture
def itop(fake_itop):
    fake_itop.users["rest"] = PASSWORD
    return fake_itop


def test_a_literal_archive_just_written_inside_its_window_is_ok_and_opens_no_ticket(tmp_path, itop):
    place_archive(tmp_path / "itop.tar.gz", FRIDAY_EVENING - timedelta(seconds=12))

    run = check(tmp_path, "itop.tar.gz", FRIDAY_EVENING, "--param-file", write_params(tmp_path, itop.url))

    assert run.exit_code == 0
    assert run.status_line == "ITOP_BACKUP OK - itop.tar.gz is still being written (12s ago)"
    assert itop.requests == []


def test_a_literal_archive_still_written_past_its_grace_is_a_warning_and_opens_no_ticket(tmp_path, itop):
    place_archive(tmp_path / "itop.tar.gz", SATURDAY_NIGHT - timedelta(seconds=12))

    run = check(tmp_path, "itop.tar.gz", SATURDAY_NIGHT, "--param-file", write_params(tmp_path, itop.url))

    assert run.exit_code == 1
    assert run.status_line == ("ITOP_BACKUP WARNING - itop.tar.gz is still being written (12s ago), "
                               "2h 30m after the backup due Fri 2026-11-27 23:30 (grace 2h 0m)")
    assert itop.requests == []


def test_a_backup_still_written_past_the_critical_age_is_critical(tmp_path):
    place_archive(tmp_path / "itop.tar.gz", SATURDAY_NIGHT - timedelta(seconds=12))

    run = check(tmp_path, "itop.tar.gz", SATURDAY_NIGHT, "-w", "1h", "-c", "2h")

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - itop.tar.gz is still being written (12s ago), "
                               "2h 30m after the backup due Fri 2026-11-27 23:30 (more than 2h 0m)")


def runner_directory(tmp_path: Path) -> Path:
    """A directory the runner writes: its lock file is there."""
    (tmp_path / ".itop-backup.lock").touch()
    return tmp_path


def test_a_runner_archive_is_judged_the_moment_it_appears(tmp_path):
    directory = runner_directory(tmp_path)
    place_archive(directory / "itop-2026-11-27_23_30.tar.gz", FRIDAY_EVENING - timedelta(seconds=5))

    run = check(directory, "__DB__-%Y-%m-%d_%H_%M", FRIDAY_EVENING)

    assert run.exit_code == 0
    assert run.status_line == ("ITOP_BACKUP OK - itop-2026-11-27_23_30.tar.gz: 5s old, 1.1 MiB, "
                               "learning size history (0/3)")


def check_while_running(directory: Path, now: datetime):
    """The check while a run, started after Thursday's archive, holds its lock and writes."""
    place_archive(directory / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))
    place_archive(directory / ".itop-backup-k2j4.tmp", now - timedelta(seconds=3), size=4096)
    with open(directory / ".itop-backup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return check(directory, "__DB__-%Y-%m-%d_%H_%M", now)


def test_a_runner_at_work_is_told_by_its_held_lock_and_hidden_temporary(tmp_path):
    directory = runner_directory(tmp_path)

    running = check_while_running(directory, SATURDAY_NIGHT)
    killed = check(directory, "__DB__-%Y-%m-%d_%H_%M", SATURDAY_NIGHT)  # lock free: a leftover

    assert running.exit_code == 1
    assert running.status_line == (
        "ITOP_BACKUP WARNING - .itop-backup-k2j4.tmp is still being written (3s ago), "
        "2h 30m after the backup due Fri 2026-11-27 23:30 (grace 2h 0m)")
    assert killed.exit_code == 2
    assert killed.status_line == (
        "ITOP_BACKUP CRITICAL - no archive itop-2026-11-27_23_30.tar.gz or later (backup due "
        "Fri 2026-11-27 23:30); newest is itop-2026-11-26_23_30.tar.gz, 1d 2h old")


def test_a_runner_at_work_inside_its_window_is_ok_naming_the_previous_archive(tmp_path):
    run = check_while_running(runner_directory(tmp_path), FRIDAY_EVENING)

    assert run.exit_code == 0
    assert run.status_line == (
        "ITOP_BACKUP OK - .itop-backup-k2j4.tmp is still being written (3s ago); previous archive "
        "itop-2026-11-26_23_30.tar.gz: 1d 0h old, 1.1 MiB, learning size history (0/3)")


@pytest.fixture
def itop_install(tmp_path, mariadb_database):
    settings, database = mariadb_database
    populate(settings, database)
    return database, write_itop(tmp_path / "itop", settings, database)


def test_the_probe_right_after_a_run_judges_its_archive_without_waiting(tmp_path, itop_install):
    database, config = itop_install
    pattern = tmp_path / "backups" / "__DB__-%Y-%m-%d_%H_%M"
    assert run_cli("--itop-config", str(config), "-f", str(pattern)) == 0

    run = run_check("-f", pattern, "--db-name", database, "--timezone", "Europe/Paris")

    [archive] = (tmp_path / "backups").glob("*.tar.gz")
    assert run.exit_code == 0, run.stdout
    assert run.status_line.startswith(f"ITOP_BACKUP OK - {archive.name}: "), run.status_line


def test_a_probe_looking_at_the_lock_never_makes_a_run_fail(tmp_path, itop_install):
    _, config = itop_install
    lock_path = tmp_path / "backups" / ".itop-backup.lock"
    lock_path.parent.mkdir()
    lock = os.open(lock_path, os.O_RDONLY | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_SH)  # a probe's look, longer than any probe's
    threading.Timer(0.3, os.close, (lock,)).start()

    status = run_cli("--itop-config", str(config), "-f", str(tmp_path / "backups" / "__DB__-%Y-%m-%d_%H_%M"))

    assert status == 0
