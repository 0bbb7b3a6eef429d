"""One backup run: lock, pre-flight, streamed dump into a hidden temporary archive, rename, retention.

The archive is written as ``.itop-backup-*.tmp`` in the target directory, fsynced, then
renamed to its final name: a killed run never leaves a file under the final name, and the
next run (holding the lock) removes such stale temporaries. Retention runs only after a
successful rename. Every run, good or bad, is recorded in the history's ``runs`` table;
a history failure is only a warning, it never masks the run's own outcome.

Members, in the order archive/layout.py declares: ``config-itop.php``, ``delta.xml``,
``<env>-modules/``, extra files at their iTop-relative paths, the manifest, ``itop-dump.sql``
(last, as iTop writes it).

The manifest (JSON: tables, their row counts and the bytes of their INSERT statements, counted
as the dump streams past; the dump's size and SHA-256) is the ``comment``
record of a PAX global header, not a file member: iTop's restore moves every file it does
not know to ``<itop-root>/<name>`` (a ``manifest.json`` member became a web-served file),
while its tar reader skips PAX headers (Archive_Tar's ``_extractList``) and GNU tar,
bsdtar and Python's tarfile ignore ``comment`` records. Archives written before keep their
``manifest.json`` member, which the verifier still reads.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from check_itop_backup import __version__, deadline
from check_itop_backup.archive import codec
from check_itop_backup.archive.dumpscan import TableCounter
from check_itop_backup.archive.layout import (
    CONFIG_MEMBER,
    DELTA_MEMBER,
    DUMP_MEMBER,
    PAX_GLOBAL_NAME,
    delta_path,
    modules_member,
    modules_path,
)
from check_itop_backup.archive.portability import PortableFilter
from check_itop_backup.archive.writer import PAX_GLOBAL_TYPE, TarGzWriter, needs_own_restore, pax_record
from check_itop_backup.database.dump import dump_command, find_dump_program, finish_dump, start_dump
from check_itop_backup.database.server import DatabaseError, ServerFacts, preflight
from check_itop_backup.itop.instance import DatabaseSettings
from check_itop_backup.itop.naming import LOCK_NAME, TEMP_PREFIX, TEMP_SUFFIX, NamePattern
from check_itop_backup.itop.retention import select_expired

_log = logging.getLogger(__name__)

MANIFEST_LABEL = f"{PAX_GLOBAL_NAME} (the manifest: a PAX 'comment' record, never extracted)"
SHARED_MODE = 0o640  # the monitoring user reads through the directory's group; others never
LOCK_PATIENCE_S = 1.0  # a probe looking whether a run is at work holds the lock for a moment
_SKIPPED_DIRS = (".git", ".svn")


class BackupError(Exception):
    """The run failed; the message is one line for people. Nothing under the final name changed."""


@dataclass(frozen=True)
class BackupJob:
    """Everything one run needs, resolved from the config, param files and options."""

    pattern: NamePattern  # an absolute path pattern
    database: DatabaseSettings
    config_path: str = ""  # config-itop.php, archived as is
    itop_root: str = ""  # for delta.xml, <env>-modules and extra files
    environment: str = "production"
    extra_files: tuple[str, ...] = ()
    retention_count: int = 0
    mysql_bindir: str = ""
    level: int = codec.DEFAULT_LEVEL
    workers: int | None = None
    wait: bool = False
    timezone: tzinfo | None = None  # iTop names archives in its config's timezone (None: local time)
    database_only: bool = False  # meant without config-itop.php: no warning (restore's saved copy)
    portable: bool = False  # a dump other servers and clients load (archive/portability.py)


@dataclass(frozen=True)
class Member:
    """A member to archive before the dump: a file or a directory (*source* None)."""

    name: str
    source: str | None


@dataclass(frozen=True)
class Plan:
    """What a run does (``--dry-run`` prints it): the dump command has no password in it."""

    archive: str
    command: tuple[str, ...]
    members: tuple[str, ...]
    facts: ServerFacts


@dataclass(frozen=True)
class BackupResult:
    """A finished run (a dry run's: nothing written, sizes 0)."""

    plan: Plan
    size: int
    dump_size: int
    seconds: float
    deleted: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def archive(self) -> str:
        return self.plan.archive


def naming_time(job: BackupJob) -> datetime:
    """Return the naive local time to name the archive with (in the config's timezone if set)."""
    if job.timezone:
        return datetime.now(job.timezone).replace(tzinfo=None)
    return datetime.now()  # noqa: DTZ005 - iTop names are naive local times


def members_of(job: BackupJob) -> list[Member]:
    """Return the members before the manifest and the dump, in iTop's order.

    Raise BackupError for an extra file outside the iTop root, as iTop does.
    """
    members = [Member(CONFIG_MEMBER, job.config_path)] if job.config_path else []
    if not members and not job.database_only:
        _log.warning("no --itop-config: the archive holds the database only; iTop's restore and "
                     "'itop-backup verify' expect config-itop.php too")
    if not job.itop_root:
        if job.extra_files:
            raise BackupError("extra files need the iTop root: give --itop-config conf/<env>/config-itop.php "
                              "of an installed iTop, or --itop-root")
        return members
    delta = os.path.join(job.itop_root, delta_path(job.environment))
    if os.path.isfile(delta):
        members.append(Member(DELTA_MEMBER, delta))
    modules = modules_member(job.environment)
    members += _tree(modules, os.path.join(job.itop_root, modules_path(job.environment)))
    root = os.path.realpath(job.itop_root)
    for relative in job.extra_files:
        source = os.path.join(job.itop_root, relative)
        if not os.path.realpath(source).startswith(root + os.sep):
            raise BackupError(f"Backup: Aborting, resource '{relative}'. Considered as UNSAFE because "
                              "not inside the iTop directory.")
        if os.path.exists(source):
            members += _tree(os.path.relpath(os.path.realpath(source), root), source)
    return members


def _tree(name: str, source: str) -> list[Member]:
    if os.path.isfile(source):
        return [Member(name, source)]
    if not os.path.isdir(source):
        return []
    found = [Member(name, None)]
    for entry in sorted(os.listdir(source)):
        if entry not in _SKIPPED_DIRS:
            found += _tree(f"{name}/{entry}", os.path.join(source, entry))
    return found


def run_backup(job: BackupJob, progress: Callable[[int], None] | None = None, *,
               dry_run: bool = False) -> BackupResult:
    """Make one archive; raise BackupError (previous archives untouched) when it cannot.

    With *dry_run*, go as far as the pre-flight, the dump command and the member list, then
    stop: nothing is written (no directory, no lock file, no archive).
    """
    started = time.time()
    archive = os.path.abspath(job.pattern.render(naming_time(job)))
    directory = os.path.dirname(archive)
    with _target_directory(directory, job.wait, dry_run):
        if not dry_run and job.pattern.has_time_codes and os.path.lexists(archive):  # literal: replaced
            raise BackupError(f"{archive} already exists (made by a run earlier in the same "
                              f"{job.pattern.precision}): not replaced")
        try:
            with deadline.current.stage(f"asking the database server {job.database.host} about "
                                        f"{job.database.name}"):
                facts = preflight(job.database)
            program = find_dump_program(job.mysql_bindir)
        except DatabaseError as error:
            raise BackupError(str(error)) from None
        try:
            members = members_of(job)
        except OSError as error:
            raise BackupError(f"cannot read {error.filename}: {error.strerror}") from None
        plan = Plan(archive, dump_command(program, "--defaults-extra-file=<pipe>", job.database, facts,
                                          job.portable),
                    tuple(m.name for m in members) + (MANIFEST_LABEL, DUMP_MEMBER), facts)
        if dry_run:
            return BackupResult(plan, 0, 0, time.time() - started)
        _warn_about_space(directory, facts)
        with deadline.current.stage(f"dumping {job.database.name} into {directory}"):
            dump_size, warnings = _write(archive, job, facts, program, members, progress)
        deleted = apply_retention(job, archive)
    size = os.stat(archive).st_size
    return BackupResult(plan, size, dump_size, time.time() - started, deleted, warnings)


@contextmanager
def _target_directory(directory: str, wait: bool, dry_run: bool) -> Iterator[None]:
    """Create *directory*, hold its lock and remove stale temporaries for the block; nothing
    of it for a dry run."""
    if dry_run:
        yield
        return
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise BackupError(f"cannot create the target directory {directory}: {error.strerror}") from None
    with deadline.current.stage(f"waiting for the lock of {directory}"), exclusive_lock(directory, wait):
        remove_stale_temporaries(directory)
        yield


@contextmanager
def exclusive_lock(directory: str, wait: bool) -> Iterator[None]:
    """Hold the runner's lock on *directory*; without *wait*, fail at once when it is taken."""
    path = os.path.join(directory, LOCK_NAME)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SHARED_MODE)
    except OSError as error:
        raise BackupError(f"cannot open the lock file {path}: {error.strerror}") from None
    try:
        share_with_group(handle, directory, path)
        if not _take(handle, wait):
            raise BackupError(f"another itop-backup run holds {path} (use --wait to queue)")
        yield
    finally:
        os.close(handle)


def _take(handle: int, wait: bool) -> bool:
    """Take the lock: at once or not at all without *wait*, but for a probe's brief look."""
    if wait:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return True
    give_up = time.monotonic() + LOCK_PATIENCE_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.05)


def share_with_group(handle: int, directory: str, path: str) -> None:
    """Give the file open as *handle* the group of *directory* and mode 0640, whatever the umask:
    the monitoring user reads archives through that group (README: the setup); other users
    never (an archive holds the config's database password)."""
    status, group = os.fstat(handle), os.stat(directory).st_gid
    try:
        if status.st_gid != group:
            os.fchown(handle, -1, group)
        if status.st_mode & 0o777 != SHARED_MODE:
            os.fchmod(handle, SHARED_MODE)
    except PermissionError:
        _log.warning("cannot give %s mode 0640 and the group of %s: the monitoring user may not read it",
                     path, directory)


def remove_stale_temporaries(directory: str) -> None:
    """Remove temporaries of killed runs (call with the lock held)."""
    for path in glob.glob(os.path.join(glob.escape(directory), f"{TEMP_PREFIX}*{TEMP_SUFFIX}")):
        _log.info("removing %s, left by an interrupted run", path)
        try:
            os.unlink(path)
        except OSError as error:
            _log.warning("cannot remove %s: %s", path, error.strerror)


def _warn_about_space(directory: str, facts: ServerFacts) -> None:
    import shutil

    free = shutil.disk_usage(directory).free
    if free < facts.data_size // 2:
        from check_itop_backup.units import format_size

        _log.warning("only %s free in %s for a database of %s", format_size(free), directory,
                     format_size(facts.data_size))


def _write(archive: str, job: BackupJob, facts: ServerFacts, program: str, members: list[Member],
           progress: Callable[[int], None] | None) -> tuple[int, tuple[str, ...]]:
    """Write the archive under a temporary name, fsync, rename; return (dump size, warnings)."""
    directory = os.path.dirname(archive)
    temporary = ""
    try:
        with deadline.shielded():  # Ctrl-C between the file's creation and the try below would leave it
            handle, temporary = tempfile.mkstemp(TEMP_SUFFIX, TEMP_PREFIX, directory)
    except OSError as error:
        raise BackupError(f"cannot create a file in {directory}: {error.strerror}") from None
    except BaseException:  # the signal held back, delivered as the block ended: the file is named
        if temporary:
            _discard(temporary)
        raise
    try:
        share_with_group(handle, directory, temporary)
        with os.fdopen(handle, "wb") as output:
            dump_size, warnings = _fill(output, job, facts, program, members, progress)
            os.fsync(output.fileno())
        os.replace(temporary, archive)
    except OSError as error:
        _discard(temporary)
        if error.errno == errno.ENOSPC:
            raise BackupError(f"disk full while writing {temporary}: no archive made") from None
        raise BackupError(f"cannot write {temporary}: {error.strerror or error}") from None
    except BaseException:
        _discard(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    return dump_size, warnings


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fill(output, job: BackupJob, facts: ServerFacts, program: str, members: list[Member],
          progress: Callable[[int], None] | None) -> tuple[int, tuple[str, ...]]:
    writer = TarGzWriter(output, job.level, job.workers)
    try:
        for member in members:
            if member.source is None:
                writer.add_directory(member.name)
            else:
                writer.add_file(member.name, member.source)
        manifest = _manifest(job, facts, _utc_now())
        widest = {table.name: 10**20 - 1 for table in facts.tables}
        placeholder = _manifest_bytes(manifest, size=10**20 - 1, sha256="0" * 64, finished=_utc_now(),
                                      table_bytes=widest)
        reservation = writer.reserve_member(PAX_GLOBAL_NAME, len(pax_record("comment", placeholder)))
        dump = start_dump(program, job.database, facts, job.portable)
        _log.info("dumping with: %s", " ".join(dump.command))
        try:
            counter = TableCounter(rows=False)
            portable = PortableFilter() if job.portable else None

            def read(size: int) -> bytes:
                chunk = dump.pipe.read(size)
                while portable is not None:  # b"" ends the member: read on while the filter holds all
                    filtered = portable.feed(chunk) if chunk else portable.finish()
                    if filtered or not chunk:
                        chunk = filtered
                        break
                    chunk = dump.pipe.read(size)
                counter.write(chunk, 0, len(chunk))
                return chunk

            summary = writer.add_stream(DUMP_MEMBER, read, progress)
            warnings = finish_dump(dump, summary.tail)
        except BaseException:
            dump.kill()
            raise
        if needs_own_restore(summary.size):
            _log.warning("the dump is %d bytes (64 GiB or more): iTop's own restore cannot read this "
                         "archive; restore it with itop-backup", summary.size)
        data = _manifest_bytes(manifest, summary.size, summary.sha256, _utc_now(), counter.sizes)
        writer.fill(reservation, PAX_GLOBAL_NAME, pax_record("comment", data.ljust(len(placeholder))),
                    PAX_GLOBAL_TYPE)
        writer.close()
    except DatabaseError as error:
        writer.abort()
        raise BackupError(str(error)) from None
    except BaseException:
        writer.abort()
        raise
    for line in warnings:
        _log.warning("mysqldump said: %s", line)
    return summary.size, tuple(warnings)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _manifest(job: BackupJob, facts: ServerFacts, started: str) -> dict:
    return {
        "format": 1,
        "tool": "check_itop_backup",
        "tool_version": __version__,
        "server_version": facts.version,
        "database": {"host": job.database.host, "name": job.database.name,
                     "subname": job.database.subname},
        "started": started,
        "tables": [{"name": t.name, "type": t.kind, "rows": t.rows} for t in facts.tables],
        "dump": {"member": DUMP_MEMBER, "charset": facts.charset},
    }


def _manifest_bytes(manifest: dict, size: int, sha256: str, finished: str,
                    table_bytes: dict[str, int]) -> bytes:
    """The manifest filled in; each table gets the bytes of its INSERT statements (0: none)."""
    tables = [dict(table, bytes=table_bytes.get(table["name"], 0)) if table["type"] != "VIEW" else table
              for table in manifest["tables"]]
    filled = dict(manifest, tables=tables, finished=finished,
                  dump=dict(manifest["dump"], size=size, sha256=sha256))
    return json.dumps(filled, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


def apply_retention(job: BackupJob, archive: str) -> tuple[str, ...]:
    """Delete the archives of the job's pattern beyond ``retention_count``; return their paths."""
    found = []
    for path in glob.glob(job.pattern.glob):
        try:
            found.append((path, os.stat(path).st_mtime))
        except OSError:
            continue
    deleted = []
    for path in select_expired(found, job.pattern, job.retention_count, protect=archive):
        try:
            os.unlink(path)
            deleted.append(path)
            _log.info("retention: deleted %s", path)
        except OSError as error:
            _log.warning("retention: cannot delete %s: %s", path, error.strerror)
    return tuple(deleted)


@contextmanager
def recorded_run(history_path: str, series: str) -> Iterator[list[BackupResult]]:
    """Record the run in the history when the block ends: ok with the result appended, or failed
    (whatever the exception: a timeout, a signal, a bug).

    A history that cannot be written is a warning; the block's own exception always wins.
    """
    results: list[BackupResult] = []
    started = time.time()
    try:
        yield results
    except BaseException as error:
        explained = isinstance(error, (BackupError, deadline.StageTimeoutError))
        _record(history_path, series, started, None, "failed",
                str(error) if explained else f"{type(error).__name__}: {error}")
        raise
    result = results[0]
    _record(history_path, series, started, result, "ok",
            f"dump {result.dump_size} bytes, {len(result.deleted)} old archive(s) deleted")


def _record(history_path: str, series: str, started: float, result: BackupResult | None,
            status: str, message: str) -> None:
    from check_itop_backup.history import History, HistoryError

    try:
        history = History.open(history_path)
        try:
            with history.transaction():
                history.record_run(series, started, time.time(), result.archive if result else None,
                                   result.size if result else None, status, message)
        finally:
            history.close()
    except (HistoryError, deadline.StageTimeoutError) as error:  # the run's own outcome matters more
        _log.warning("the run is not recorded: %s", error)
