"""Restore an archive's files into an iTop directory, and iTop's maintenance mode around it.

While the dump loads, the other members are staged in ``<root>/data/.itop-restore-<random>``
(mode 0700: config-itop.php holds the database password); once the database is in place
they are moved where iTop's restore puts them (its steps: tests/data/itop/restore_files.php):

* ``config-itop.php`` to ``conf/<env>/config-itop.php``, mode 0440;
* ``delta.xml`` to ``data/<env>.delta.xml`` (an existing one is removed when the archive
  has none, as iTop does);
* ``<env>-modules/`` (iTop writes ``production-modules``) to ``data/<env>-modules/``,
  replacing the existing directory;
* every other regular file to its path relative to the iTop root.

Nothing is written outside the root: names with ``..`` or a leading ``/`` are refused,
links in the archive are skipped, and an existing symbolic link on the way to a
destination is never followed. The staging directory is removed whatever happens.

For a recovery after kill -9, the run's journal ``data/.itop-restore-<token>.json`` (0600,
``FilesJournal``) lies beside the staging directory, locked (``flock``) while the run lives,
saying whether the run created ``data/.maintenance`` and whether the database was swapped;
``recover_files`` acts on dead runs' journals only: before the swap it removes what they
left, after it it places their staged files first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

from check_itop_backup.archive.inspect import Discard
from check_itop_backup.archive.layout import (
    CONFIG_MEMBER,
    DELTA_MEMBER,
    ITOP_MODULES_MEMBER,
    NOT_FILES,
    config_path,
    delta_path,
    modules_member,
    modules_path,
)
from check_itop_backup.archive.tar import REGULAR_TYPES, unsafe_reason

CONFIG_MODE = 0o440
MAINTENANCE_FILE = os.path.join("data", ".maintenance")
_FILES_JOURNAL = re.compile(r"\.itop-restore-([0-9a-f]{16})\.json")
REMINDER = (
    "iTop's restore recompiles the environment afterwards, which itop-backup cannot do: if the "
    "iTop code or its extensions differ from the backed-up instance, run the setup again (Upgrade, "
    "same choices); make conf/, data/ and env-<env>/ writable by the web server user (iTop's docs: "
    "e.g. chown -R www-data: conf data env-production log); the restored config-itop.php carries "
    "the backed-up instance's database credentials and is read-only (0440)."
)


class FilesError(Exception):
    """A member cannot be placed safely; the message is one line for people."""


@contextlib.contextmanager
def maintenance_mode(itop_root: str, journal: FilesJournal) -> Iterator[str]:
    """Create ``data/.maintenance`` (iTop answers 503, its cron and CLI scripts do nothing) for
    the block and remove it afterwards, whatever happens, unless it was there before (as iTop).
    The *journal* records that it was created, for a recovery after kill -9 (``recover_files``)."""
    path = os.path.join(itop_root, MAINTENANCE_FILE)
    existed = os.path.lexists(path)
    if not existed:
        try:
            with open(path, "x"):
                pass
        except OSError as error:
            raise FilesError(f"cannot enter maintenance mode ({path}): {error.strerror}") from None
        journal.note(maintenance=True)
    try:
        yield path
    finally:
        if not existed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class _FileSink:
    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data: bytes, start: int, end: int) -> None:
        self.handle.write(memoryview(data)[start:end])


@dataclass
class StagedFiles:
    """The archive's files, staged under the iTop root while the dump loads.

    Use as a context manager: the staging directory (*staging*, the run's journal names it)
    is created, and removed when the block ends.
    ``open_member(name, kind)`` is the sink factory load.load_dump (database/load.py) calls.
    """

    itop_root: str
    environment: str = "production"
    staging: str = ""
    names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    keep: bool = False  # keep the staging directory: placing failed, a later restore places the rest
    _handle: object = None

    def __enter__(self) -> StagedFiles:
        _safe_directory(self.itop_root, "data")
        os.mkdir(self.staging, 0o700)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()
        if not self.keep:
            shutil.rmtree(self.staging, ignore_errors=True)

    def open_member(self, name: str, kind: bytes):
        """Return the sink for member *name* (``./`` and trailing ``/`` already dropped)."""
        self._close()
        reason = unsafe_reason(name, kind, "")
        if reason:
            raise FilesError(reason)
        if name in NOT_FILES or not name:
            return Discard()
        path = os.path.join(self.staging, name)
        if kind == b"5":
            os.makedirs(path, 0o700, exist_ok=True)
            return Discard()
        if kind not in REGULAR_TYPES:
            self.skipped.append(name)
            return Discard()
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by the next member or __exit__
        self.names.append(name)
        return _FileSink(self._handle)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def check_placement(self) -> None:
        """Raise FilesError when a staged file could not be placed: checked before the database
        is swapped, so that a restore refused for its files has written nothing."""
        self._close()
        destinations = {self._destination(name) for name in self.names} - {""}
        destinations.add(self._destination(DELTA_MEMBER))  # replaced or removed in any case
        for relative in sorted(destinations):
            path = _safe_directory(self.itop_root, os.path.dirname(relative), create=False)
            if not os.access(path, os.W_OK | os.X_OK):
                raise FilesError(f"{path} is not writable: the archive's files cannot be placed")
            destination = os.path.join(self.itop_root, relative)
            if os.path.isdir(destination) and not os.path.islink(destination):
                raise FilesError(f"{destination} is a directory: a file of the archive cannot replace it")

    def _destination(self, name: str) -> str:
        """Where ``place`` puts the staged regular file *name*, relative to the root ("" for modules)."""
        if name == CONFIG_MEMBER:
            return config_path(self.environment)
        if name == DELTA_MEMBER:
            return delta_path(self.environment)
        if name.split("/", 1)[0] in (modules_member(self.environment), ITOP_MODULES_MEMBER):
            return ""
        return name

    def place(self, rest_only: bool = False) -> list[str]:
        """Move the staged files to their places in the iTop root; return the paths written.

        ``written`` holds them too, so that a failure half-way can say what was placed. With
        *rest_only* (what a killed or failed run left staged) a live delta or modules directory
        that is not staged stays: that run may have placed it already."""
        self._close()
        root, env = self.itop_root, self.environment
        modules = modules_member(env)
        written = self.written
        staged_modules = next((os.path.join(self.staging, name) for name in (modules, ITOP_MODULES_MEMBER)
                               if os.path.isdir(os.path.join(self.staging, name))), None)
        config = os.path.join(self.staging, CONFIG_MEMBER)
        if os.path.isfile(config):
            live = _safe_path(root, config_path(env))  # replaced by rename: its 0440 does not matter
            os.chmod(config, CONFIG_MODE)
            os.replace(config, live)
            written.append(live)
        delta = _safe_path(root, delta_path(env))
        if os.path.isfile(os.path.join(self.staging, DELTA_MEMBER)):
            os.replace(os.path.join(self.staging, DELTA_MEMBER), delta)
            written.append(delta)
        elif os.path.lexists(delta) and not rest_only:
            os.unlink(delta)
        live_modules = os.path.join(root, modules_path(env))
        if staged_modules or not rest_only:
            _remove(live_modules)
        if staged_modules:
            os.replace(staged_modules, live_modules)
            written.append(live_modules + os.sep)
        for name in self.names:
            source = os.path.join(self.staging, name)
            top = name.split("/", 1)[0]
            if not os.path.isfile(source) or top in (modules, ITOP_MODULES_MEMBER):
                continue
            destination = _safe_path(root, name)
            shutil.move(source, destination)
            written.append(destination)
        return written


def _safe_path(root: str, relative: str) -> str:
    """Return ``root/relative`` once its directory is there and safe (``_safe_directory``)."""
    return os.path.join(_safe_directory(root, os.path.dirname(relative)), os.path.basename(relative))


def _safe_directory(root: str, relative: str, create: bool = True) -> str:
    """Return ``root/relative``, creating missing directories, after checking that no part of
    it is a symbolic link, a file or climbs out; raise FilesError otherwise. Without *create*,
    return its deepest existing directory instead."""
    path = root
    for part in [part for part in relative.split("/") if part not in ("", ".")]:
        if part == "..":
            raise FilesError(f"{relative!r} climbs out of the iTop root {root}")
        candidate = os.path.join(path, part)
        if os.path.islink(candidate):
            raise FilesError(f"{candidate} is a symbolic link: not followed, nothing written through it")
        if not os.path.lexists(candidate):
            if not create:
                return path
            os.mkdir(candidate)
        elif not os.path.isdir(candidate):
            raise FilesError(f"{candidate} is not a directory: the archive's files cannot be placed")
        path = candidate
    return path


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


class FilesJournal:
    """The journal of a restore into an iTop root: ``data/.itop-restore-<token>.json``, locked
    while the run lives. Use as a context manager; ``note(**facts)`` records as the run goes."""

    def __init__(self, itop_root: str, token: str, environment: str) -> None:
        self.path = os.path.join(itop_root, "data", f".itop-restore-{token}.json")
        self.staging = self.path[:-len(".json")]
        self.facts = {"environment": environment, "maintenance": False, "swapped": False}
        self.keep = False  # left for a later restore to finish (its lock is released)
        self._fd = -1

    def __enter__(self) -> FilesJournal:
        # Locked and written under another name first: a recovery never sees it unlocked.
        temporary = f"{self.path}.new"
        try:
            self._fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._write()
            os.rename(temporary, self.path)
        except OSError as error:
            raise FilesError(f"cannot write the restore journal {self.path}: {error.strerror}") from None
        return self

    def note(self, **facts: object) -> None:
        self.facts.update(facts)
        self._write()

    def _write(self) -> None:
        data = json.dumps(self.facts).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def __exit__(self, *exc_info: object) -> None:
        if not self.keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)


def recover_files(itop_root: str) -> list[str]:
    """Finish or undo what dead restores left in *itop_root*; return what was done.

    Raise FilesError naming what remains when it cannot be removed (another user's files).
    """
    data = os.path.join(itop_root, "data")
    try:
        names = sorted(name for name in os.listdir(data) if _FILES_JOURNAL.fullmatch(name))
    except FileNotFoundError:
        return []
    except OSError as error:
        raise FilesError(f"cannot look for leftovers of killed restores in {data}: "
                            f"{error.strerror}") from None
    done = []
    for name in names:
        path = os.path.join(data, name)
        try:
            with _dead_journal(path) as facts:
                if facts is None:
                    continue
                staging = path[:-len(".json")]
                if facts.get("swapped") and os.path.isdir(staging):
                    environment = str(facts.get("environment") or "production")
                    files = StagedFiles(itop_root, environment, staging=staging, names=_staged_names(staging))
                    placed = files.place(rest_only=True)
                    done.append(f"placed the {len(placed)} file(s) it had staged")
                if os.path.lexists(staging):
                    shutil.rmtree(staging)
                    done.append(f"removed its staging directory {staging}")
                maintenance = os.path.join(itop_root, MAINTENANCE_FILE)
                if facts.get("maintenance") and os.path.lexists(maintenance):
                    os.unlink(maintenance)
                    done.append(f"left the maintenance mode it had entered ({maintenance})")
                os.unlink(path)
        except (OSError, FilesError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise FilesError(f"a killed restore left {path} and what it names (maintenance mode, staged "
                                f"files) and they cannot be cleaned: {reason}") from None
    return [f"a killed restore had left work behind in {itop_root}: {item}" for item in done]


@contextlib.contextmanager
def _dead_journal(path: str) -> Iterator[dict | None]:
    """Yield the facts of the journal at *path* when its run is dead (its lock free), else None."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            facts = json.loads(os.read(fd, 1 << 16) or b"{}")
        except ValueError:
            facts = {}
        yield facts if isinstance(facts, dict) else {}
    finally:
        os.close(fd)


def _staged_names(staging: str) -> list[str]:
    names = []
    for directory, _, files in os.walk(staging):
        names += [os.path.relpath(os.path.join(directory, name), staging) for name in files]
    return sorted(names)
