"""Find the archive to judge: list the series on disk, skip what is still being written,
and tell whether the newest archive belongs to the backup slot the schedule expects.

Only ``stat``, directory listings and a look at the runner's lock here; nothing reads
archive contents.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

from check_itop_backup.itop.naming import LOCK_NAME, TEMP_PREFIX, TEMP_SUFFIX, TOKEN, NamePattern


class FinderError(Exception):
    """The archives cannot be listed (permissions, I/O error): the probe cannot tell."""


class ArchiveFile(namedtuple("ArchiveFile", "path size mtime inode name_time")):
    """One archive on disk; ``name_time`` is the time its name encodes (None for a literal)."""

    __slots__ = ()

    @property
    def order(self) -> tuple:
        return (self.name_time or datetime.min, self.mtime, self.path)  # noqa: DTZ901 - naive on purpose


class Selection(SimpleNamespace):
    """What the finder saw and chose, by keyword.

    ``slot``: the scheduled start the judged archive must belong to; ``expected``: the name of
    an archive made then; ``archives``: the whole series, oldest first; ``judged``: the newest
    archive not being written (or None); ``in_progress``: what is being written (the newest
    archive modified within the settle time, or the runner's hidden temporary), or None;
    ``on_time``: judged belongs to the slot; ``missing_directory``: the backup directory when
    it does not exist; ``overdue_slot``: the due backup's start when it is still being written
    past its grace (None when it is done, or written inside its window).
    """


def list_series(pattern: NamePattern) -> list[ArchiveFile]:
    """Return every archive of *pattern* on disk, oldest first; raise FinderError if unreadable."""
    if not pattern.has_time_codes:
        found = _stat(pattern.pattern, None)
        return [found] if found else []
    directory = os.path.dirname(pattern.pattern) or "."
    if TOKEN.search(directory):
        import glob  # rare: tokens in the directory part

        paths = glob.glob(pattern.glob)
    else:
        try:
            with os.scandir(directory) as entries:
                paths = [os.path.join(os.path.dirname(pattern.pattern), e.name) for e in entries]
        except FileNotFoundError:
            return []
        except OSError as error:
            raise FinderError(f"cannot list {directory}: {error.strerror}") from None
    archives = []
    for path in paths:
        name_time = pattern.parse_time(path)
        if name_time is not None:
            found = _stat(path, name_time)
            if found:
                archives.append(found)
    return sorted(archives, key=lambda a: a.order)


def _stat(path: str, name_time: datetime | None) -> ArchiveFile | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FinderError(f"cannot stat {path}: {error.strerror}") from None
    if not os.path.isfile(path):
        return None
    return ArchiveFile(path, status.st_size, status.st_mtime, status.st_ino, name_time)


class Runner(SimpleNamespace):
    """The runner's lock is in the directory: its archives appear complete (atomic rename).
    ``writing``: its hidden temporary while a run is at work, else None."""

    def __init__(self, writing: str | None) -> None:
        super().__init__(writing=writing)


def find_runner(directory: str, now_epoch: float, settle: float) -> Runner | None:
    """Return what the runner does in *directory*, or None when it does not write there.

    A run is at work while it holds its lock: a shared lock taken without waiting fails
    (released at once; the runner waits a moment for it). When the lock file cannot be
    opened, a temporary modified within *settle* seconds counts as at work.
    """
    try:
        handle = os.open(os.path.join(directory, LOCK_NAME), os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        held = None
    else:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
        finally:
            os.close(handle)
    if held is False:
        return Runner(None)
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries
                     if e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)]
    except OSError:  # a directory one may enter but not list: nothing to see
        names = []
    temporaries = sorted(filter(None, (_stat(os.path.join(directory, n), None) for n in names)),
                         key=lambda a: a.mtime)
    newest = temporaries[-1] if temporaries else None
    at_work = held or (newest is not None and now_epoch - newest.mtime < settle)
    return Runner(newest if at_work else None)


def world_readable(path: str) -> int | None:
    """The mode of *path* when every local user can read it (o+r, and o+x on every directory
    above), else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        directory = os.path.dirname(os.path.abspath(path))
        while mode & stat.S_IROTH:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return None
            if os.path.dirname(directory) == directory:
                return mode
            directory = os.path.dirname(directory)
    except OSError:
        pass
    return None


def select(pattern: NamePattern, archives: list[ArchiveFile], slot: datetime,
           previous_slot: datetime, current_slot: datetime, to_epoch: Callable[[datetime], float],
           now_epoch: float, settle: float, runner: Runner | None = None) -> Selection:
    """Choose the archive to judge among *archives* (oldest first).

    The newest archive modified less than *settle* seconds ago is still being written: it is
    skipped and the one before it is judged. In a directory the runner writes (*runner*),
    no archive is skipped: what is being written is the runner's temporary. When what is
    being written is the backup of *slot*, the judged archive only has to belong to
    *previous_slot*; it is overdue unless it belongs to *current_slot* (the latest start,
    grace not over: inside its window) or *slot* has a finished archive. *to_epoch* converts
    iTop's wall-clock times to epoch seconds.
    """
    if runner is not None:
        settled, in_progress = archives, runner.writing
    else:
        settled = [a for a in archives if now_epoch - a.mtime >= settle]
        writing = [a for a in archives if now_epoch - a.mtime < settle]
        in_progress = writing[-1] if writing else None
    judged = settled[-1] if settled else None
    overdue_slot = None
    if in_progress and _belongs(pattern, in_progress, slot, to_epoch):
        in_window = current_slot > slot and _belongs(pattern, in_progress, current_slot, to_epoch)
        done = judged is not None and _belongs(pattern, judged, slot, to_epoch)
        overdue_slot = None if in_window or done else slot
        slot = previous_slot
    directory = os.path.dirname(pattern.pattern) or "."
    missing_directory = None if TOKEN.search(directory) or os.path.isdir(directory) else directory
    return Selection(
        slot=slot,
        expected=pattern.render(slot) if pattern.has_time_codes else pattern.pattern,
        archives=archives,
        judged=judged,
        in_progress=in_progress,
        on_time=bool(judged and _belongs(pattern, judged, slot, to_epoch)),
        missing_directory=missing_directory,
        overdue_slot=overdue_slot,
    )


def _belongs(pattern: NamePattern, archive: ArchiveFile, slot: datetime,
             to_epoch: Callable[[datetime], float]) -> bool:
    """An archive belongs to a slot when it was made at or after the slot's start."""
    if archive.name_time is None:
        return archive.mtime >= to_epoch(slot)
    return archive.name_time >= pattern.truncate(slot)
