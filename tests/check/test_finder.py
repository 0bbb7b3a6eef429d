"""The finder on its own: which files make a series, which archive is judged and which is still
being written, the runner's lock and temporaries, and when an archive is world-readable."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from check_itop_backup.check.finder import (
    LOCK_NAME,
    ArchiveFile,
    FinderError,
    Runner,
    find_runner,
    list_series,
    select,
    world_readable,
)
from check_itop_backup.itop.naming import NamePattern

NOW = datetime(2026, 11, 27, 10, 0)
SETTLE = 60.0
SLOT, PREVIOUS_SLOT = datetime(2026, 11, 26, 23, 30), datetime(2026, 11, 25, 23, 30)


def epoch(when: datetime) -> float:
    return when.timestamp()  # naive: the local zone, for the finder as for these tests


def pattern_in(directory: Path) -> NamePattern:
    return NamePattern.from_spec(str(directory / "__DB__-%Y-%m-%d_%H_%M"), db="itop")


def archive(directory: Path, name: str, modified: datetime, size: int = 10) -> Path:
    path = directory / name
    path.write_bytes(b"x" * size)
    os.utime(path, (epoch(modified), epoch(modified)))
    return path


def choose(directory: Path, now: datetime = NOW, runner: Runner | None = None, slot: datetime = SLOT,
           previous_slot: datetime = PREVIOUS_SLOT, current_slot: datetime = SLOT):
    pattern = pattern_in(directory)
    return select(pattern, list_series(pattern), slot, previous_slot, current_slot, epoch, epoch(now), SETTLE,
                  runner)


def test_the_series_is_every_file_of_the_pattern_oldest_first(tmp_path):
    newer = archive(tmp_path, "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34), size=7)
    archive(tmp_path, "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 27, 9, 0))  # copied later
    archive(tmp_path, "other-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34))
    archive(tmp_path, "itop-2026-11-26_23_30.zip", datetime(2026, 11, 26, 23, 34))
    (tmp_path / "itop-2026-11-27_23_30.tar.gz").mkdir()  # a directory of the name is no archive

    series = list_series(pattern_in(tmp_path))

    assert [Path(a.path).name for a in series] == ["itop-2026-11-25_23_30.tar.gz",
                                                   "itop-2026-11-26_23_30.tar.gz"]
    assert series[1] == ArchiveFile(str(newer), 7, epoch(datetime(2026, 11, 26, 23, 34)),
                                    newer.stat().st_ino, datetime(2026, 11, 26, 23, 30))


def test_a_missing_directory_is_an_empty_series_and_a_file_in_its_place_cannot_be_listed(tmp_path):
    assert list_series(pattern_in(tmp_path / "missing")) == []
    (tmp_path / "file").write_text("")

    with pytest.raises(FinderError) as failed:
        list_series(pattern_in(tmp_path / "file"))

    assert str(failed.value) == f"cannot list {tmp_path / 'file'}: Not a directory"


def test_a_literal_name_is_a_series_of_that_file_or_nothing(tmp_path):
    pattern = NamePattern.from_spec(str(tmp_path / "itop.tar.gz"))
    assert list_series(pattern) == []
    path = archive(tmp_path, "itop.tar.gz", datetime(2026, 11, 26, 23, 34))

    assert [(a.path, a.name_time) for a in list_series(pattern)] == [(str(path), None)]


def test_the_newest_settled_archive_is_judged_and_on_time_for_its_slot(tmp_path):
    archive(tmp_path, "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 25, 23, 34))
    judged = archive(tmp_path, "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34))

    chosen = choose(tmp_path)

    assert (chosen.judged.path, chosen.in_progress, chosen.on_time) == (str(judged), None, True)
    assert (chosen.slot, chosen.expected) == (SLOT, str(tmp_path / "itop-2026-11-26_23_30.tar.gz"))
    assert (chosen.missing_directory, chosen.overdue_slot) == (None, None)
    assert len(chosen.archives) == 2


def test_an_archive_modified_within_the_settle_time_is_in_progress_and_the_one_before_is_judged(tmp_path):
    before = archive(tmp_path, "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 25, 23, 34))
    writing = archive(tmp_path, "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34))

    chosen = choose(tmp_path, now=datetime(2026, 11, 26, 23, 34, 30))  # 30 s after its last write

    assert (chosen.judged.path, chosen.in_progress.path) == (str(before), str(writing))
    assert chosen.slot == PREVIOUS_SLOT  # the due backup is being written: the one before must be there
    assert chosen.on_time
    assert chosen.overdue_slot == SLOT  # its grace is over and it is still being written


def test_an_archive_written_inside_its_window_or_after_one_of_its_slot_is_not_overdue(tmp_path):
    archive(tmp_path, "itop-2026-11-24_23_30.tar.gz", datetime(2026, 11, 24, 23, 34))
    archive(tmp_path, "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34))
    writing = datetime(2026, 11, 26, 23, 34, 30)

    inside = choose(tmp_path, now=writing, slot=PREVIOUS_SLOT, previous_slot=datetime(2026, 11, 24, 23, 30),
                    current_slot=SLOT)  # the 25th is due, the 26th's grace is not over
    assert (inside.slot, inside.overdue_slot) == (datetime(2026, 11, 24, 23, 30), None)
    archive(tmp_path, "itop-2026-11-26_23_31.tar.gz", datetime(2026, 11, 26, 23, 34, 20))  # a second run
    finished = epoch(datetime(2026, 11, 26, 23, 33))
    os.utime(tmp_path / "itop-2026-11-26_23_30.tar.gz", (finished, finished))  # settled by then
    done = choose(tmp_path, now=datetime(2026, 11, 26, 23, 34, 30))
    assert (Path(done.judged.path).name, done.overdue_slot) == ("itop-2026-11-26_23_30.tar.gz", None)


def test_in_a_directory_the_runner_writes_nothing_is_skipped_and_its_temporary_is_in_progress(tmp_path):
    fresh = archive(tmp_path, "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34))
    temporary = ArchiveFile(str(tmp_path / ".itop-backup-x.tmp"), 1, epoch(NOW), 1, None)

    chosen = choose(tmp_path, now=datetime(2026, 11, 26, 23, 34, 30), runner=Runner(temporary))

    assert (chosen.judged.path, chosen.in_progress) == (str(fresh), temporary)


def test_a_missing_directory_is_named_and_nothing_is_judged(tmp_path):
    chosen = choose(tmp_path / "missing")

    assert chosen.missing_directory == str(tmp_path / "missing")
    assert (chosen.judged, chosen.on_time) == (None, False)


def test_an_archive_of_an_older_slot_is_not_on_time(tmp_path):
    archive(tmp_path, "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 25, 23, 34))

    assert not choose(tmp_path).on_time


def temporary(directory: Path, name: str, age: float) -> Path:
    path = directory / name
    path.write_bytes(b"")
    os.utime(path, (epoch(NOW) - age, epoch(NOW) - age))
    return path


def test_without_its_lock_the_runner_does_not_write_the_directory(tmp_path):
    temporary(tmp_path, ".itop-backup-1.tmp", age=1)

    assert find_runner(str(tmp_path), epoch(NOW), SETTLE) is None


def test_a_lock_nobody_holds_means_the_runner_writes_here_and_is_idle(tmp_path):
    (tmp_path / LOCK_NAME).write_text("")
    temporary(tmp_path, ".itop-backup-1.tmp", age=1)  # left by a killed run

    assert find_runner(str(tmp_path), epoch(NOW), SETTLE) == Runner(None)


def test_a_held_lock_means_a_run_at_work_on_its_newest_temporary(tmp_path):
    temporary(tmp_path, ".itop-backup-old.tmp", age=7200)
    newest = temporary(tmp_path, ".itop-backup-new.tmp", age=3600)  # not written for an hour: still at work
    temporary(tmp_path, "itop-backup-other.tmp", age=1)  # not the runner's (no leading dot)
    with open(tmp_path / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)

        runner = find_runner(str(tmp_path), epoch(NOW), SETTLE)

    assert runner.writing.path == str(newest)


def test_a_lock_that_cannot_be_opened_falls_back_to_the_temporaries_age(tmp_path):
    (tmp_path / LOCK_NAME).symlink_to(LOCK_NAME)  # a loop: open() fails with ELOOP
    fresh = temporary(tmp_path, ".itop-backup-1.tmp", age=10)

    assert find_runner(str(tmp_path), epoch(NOW), SETTLE).writing.path == str(fresh)
    os.utime(fresh, (epoch(NOW) - 600, epoch(NOW) - 600))
    assert find_runner(str(tmp_path), epoch(NOW), SETTLE) == Runner(None)


@pytest.fixture
def reachable(tmp_path):
    """A directory every local user can enter (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="cib-finder-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_an_archive_is_world_readable_when_others_may_read_it_and_reach_it(reachable, tmp_path):
    path = reachable / "itop.tar.gz"
    path.write_bytes(b"")
    path.chmod(0o644)
    assert world_readable(str(path)) == 0o644

    path.chmod(0o640)
    assert world_readable(str(path)) is None
    path.chmod(0o644)
    reachable.chmod(0o750)  # others cannot enter the directory
    assert world_readable(str(path)) is None
    hidden = tmp_path / "itop.tar.gz"  # under pytest's 0700 directory
    hidden.write_bytes(b"")
    hidden.chmod(0o644)
    assert world_readable(str(hidden)) is None
    assert world_readable(str(reachable / "missing")) is None
