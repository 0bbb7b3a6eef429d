"""Find the archive to judge: list the series on disk, skip what is still being written,
and tell whether the newest archive belongs to the backup slot the schedule expects.

Only ``stat`` and directory listings here; nothing reads archive contents.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime

from check_itop_backup.naming import TOKEN, NamePattern


class FinderError(Exception):
    """The archives cannot be listed (permissions, I/O error): the probe cannot tell."""


class ArchiveFile(namedtuple("ArchiveFile", "path size mtime inode name_time")):
    """One archive on disk; ``name_time`` is the time its name encodes (None for a literal)."""

    __slots__ = ()

    @property
    def order(self) -> tuple:
        return (self.name_time or datetime.min, self.mtime, self.path)  # noqa: DTZ901 - naive on purpose


class Selection(namedtuple("Selection", "slot expected archives judged in_progress on_time "
                                         "missing_directory")):
    """What the finder saw and chose.

    ``slot``: the scheduled start the judged archive must belong to; ``expected``: the name of
    an archive made then; ``archives``: the whole series, oldest first; ``judged``: the newest
    archive not being written (or None); ``in_progress``: the newest archive, skipped because
    modified within the settle time (or None); ``on_time``: judged belongs to the slot;
    ``missing_directory``: the backup directory when it does not exist.
    """

    __slots__ = ()


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


def select(pattern: NamePattern, archives: list[ArchiveFile], slot: datetime,
           previous_slot: datetime, to_epoch: Callable[[datetime], float], now_epoch: float,
           settle: float) -> Selection:
    """Choose the archive to judge among *archives* (oldest first).

    The newest archive modified less than *settle* seconds ago is still being written: it is
    skipped and the one before it is judged. When the skipped archive is the one of *slot*,
    the judged archive only has to belong to *previous_slot*. *to_epoch* converts iTop's
    wall-clock times to epoch seconds.
    """
    settled = [a for a in archives if now_epoch - a.mtime >= settle]
    writing = [a for a in archives if now_epoch - a.mtime < settle]
    in_progress = writing[-1] if writing else None
    if in_progress and _belongs(pattern, in_progress, slot, to_epoch):
        slot = previous_slot
    judged = settled[-1] if settled else None
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
    )


def _belongs(pattern: NamePattern, archive: ArchiveFile, slot: datetime,
             to_epoch: Callable[[datetime], float]) -> bool:
    """An archive belongs to a slot when it was made at or after the slot's start."""
    if archive.name_time is None:
        return archive.mtime >= to_epoch(slot)
    return archive.name_time >= pattern.truncate(slot)
