"""After a run: copy the new archive, and those earlier runs could not copy, to object storage;
then the store's retention.

Every archive to copy is first noted in the history's ``uploads`` table (``pending``); a
copy that fails stays pending, and the next run retries it before its own archive (oldest
first), as long as the archive is still on disk (retention of local files is not changed by
an upload: an archive deleted before it was copied is noted ``lost``). A failed copy never
touches the local archive. Remote retention runs only when every pending copy went through,
on the objects of the run's pattern, and never deletes the copy just made: the newest
verified one (the store checked its checksum). Each run also copies again the archives among
the newest ``retention_count`` on disk whose copy is not in the store (deleted there). An
upload a killed run began is resumed when the archive is still the same (offsite/upload.py).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from check_itop_backup import deadline
from check_itop_backup.archive.inspect import read_manifest
from check_itop_backup.history import History, HistoryError
from check_itop_backup.itop.naming import NamePattern
from check_itop_backup.itop.retention import select_expired
from check_itop_backup.offsite.location import Location, archive_name
from check_itop_backup.offsite.store import OffsiteError, Store, StoreSettings
from check_itop_backup.offsite.upload import (
    ArchiveIdentity,
    ObjectLock,
    Resumable,
    recipients_from,
    upload_archive,
)

_log = logging.getLogger(__name__)


class OffsiteCopyError(Exception):
    """A copy failed; the message is one line for people. The local archives are untouched."""


@dataclass(frozen=True)
class OffsiteJob:
    """Where and how to copy a series' archives."""

    location: Location
    store: StoreSettings = field(default_factory=StoreSettings)
    retention_count: int = 0  # 0: keep every copy
    recipients: tuple[str, ...] = ()  # age or SSH public keys: the copies are encrypted to them
    lock_days: int = 0  # S3 Object Lock retention of each copy (0: none)
    lock_mode: str = "governance"


@dataclass(frozen=True)
class OffsiteResult:
    """What was copied (archive path, ``s3://`` URL of the copy) and deleted from the store by its
    retention (keys)."""

    copied: tuple[tuple[str, str], ...]
    deleted: tuple[str, ...] = ()


def archive_identity(path: str) -> ArchiveIdentity:
    """The identity of the archive at *path*: stat, and the manifest summary when it has one."""
    status = os.stat(path)
    manifest = read_manifest(path) or {}
    dump = manifest.get("dump") if isinstance(manifest.get("dump"), dict) else {}
    tables = manifest.get("tables")
    return ArchiveIdentity(os.path.basename(path), status.st_size, status.st_mtime,
                           dump.get("size"), str(dump.get("sha256") or ""),
                           len(tables) if isinstance(tables, list) else None)


def copy_offsite(job: OffsiteJob, pattern: NamePattern, archive: str, history_path: str) -> OffsiteResult:
    """Copy *archive* and the pending archives of *pattern*'s series; raise OffsiteCopyError."""
    series, destination = pattern.pattern, job.location.url()
    try:
        recipients = recipients_from(job.recipients) if job.recipients else ()
    except ValueError as error:
        raise OffsiteCopyError(f"--offsite-encrypt-to: {error}") from None
    _requested(history_path, series, archive, destination)
    pending = _history(history_path, lambda h: h.pending_uploads(series, destination)) or [archive]
    copied: list[tuple[str, str]] = []
    path = archive
    try:
        store = Store(job.store)
        pending = _without_copy(store, job, pattern, pending)
        for path in pending:
            _requested(history_path, series, path, destination)
            if not os.path.exists(path):
                _log.warning("%s was deleted before it was copied to %s", path, destination)
                _ended(history_path, path, destination, "lost", None, "deleted before it was copied")
                continue
            with deadline.current.stage(f"copying {os.path.basename(path)} to {destination}"):
                uploaded = _upload(store, job, path, recipients, history_path)
            _log.info("copied %s to %s (%s)", path, job.location.url(uploaded.key), uploaded.checksum)
            _ended(history_path, path, destination, "done", uploaded.key, uploaded.checksum)
            copied.append((path, job.location.url(uploaded.key)))
    except (OffsiteError, OSError) as error:
        reason = str(error) if isinstance(error, OffsiteError) \
            else f"cannot read {error.filename}: {error.strerror}"
        _ended(history_path, path, destination, "pending", None, reason)
        raise OffsiteCopyError(f"{os.path.basename(path)} is not copied to {destination} ({reason}); "
                               "it is kept here and the next run retries") from None
    deleted = _remote_retention(store, job, pattern, copied[-1][1]) if copied else ()
    return OffsiteResult(tuple(copied), deleted)


def _upload(store: Store, job: OffsiteJob, path: str, recipients: tuple, history_path: str):
    """Upload *path*, resuming the upload a killed run left of this same archive (the history
    noted its id and the archive's identity when it began)."""
    destination = job.location.url()
    identity = archive_identity(path)
    noted = json.dumps([identity, bool(recipients)])
    began = _history(history_path, lambda h: h.started_upload(path, destination))
    resume = Resumable(began[0], began[1]) if began and began[2] == noted else None

    def started(upload: Resumable) -> None:
        _history(history_path, lambda h: h.upload_started(path, destination, upload.upload_id,
                                                          upload.checksum, noted))

    return upload_archive(store, job.location, path, identity, recipients, _lock(job), resume=resume,
                          started=started)


def _without_copy(store: Store, job: OffsiteJob, pattern: NamePattern, pending: list[str]) -> list[str]:
    """*pending*, and before it the archives among the newest ``retention_count`` on disk whose
    copy is not in the store (deleted there, or made before ``--offsite`` was given)."""
    copies = {archive_name(item.key) for item in store.list(job.location)}
    found = sorted(glob.glob(pattern.glob),
                   key=lambda path: (pattern.parse_time(path) or datetime(1, 1, 1), path))
    kept = found[-job.retention_count:] if job.retention_count > 0 else found
    missing = [path for path in kept if os.path.basename(path) not in copies and path not in pending]
    return missing + pending


def _lock(job: OffsiteJob) -> ObjectLock | None:
    if not job.lock_days:
        return None
    return ObjectLock(job.lock_mode, datetime.now(timezone.utc) + timedelta(days=job.lock_days))


def _remote_retention(store: Store, job: OffsiteJob, pattern: NamePattern, newest: str) -> tuple[str, ...]:
    """Delete the copies of *pattern* beyond ``retention_count``, never *newest* (the URL of the
    copy just made); a copy the store refuses to delete is a warning."""
    if job.retention_count <= 0:
        return ()
    directory = os.path.dirname(pattern.pattern)
    by_path = {os.path.join(directory, archive_name(item.key)): item for item in store.list(job.location)}
    protect = os.path.join(directory, archive_name(newest))
    deleted = []
    found = [(path, item.modified) for path, item in by_path.items()]
    for path in select_expired(found, pattern, job.retention_count, protect=protect):
        key = by_path[path].key
        try:
            store.delete(job.location.bucket, key)
            deleted.append(key)
            _log.info("offsite retention: deleted %s", job.location.url(key))
        except OffsiteError as error:
            _log.warning("offsite retention: %s", error)
    return tuple(deleted)


def _history(path: str, work):
    """Run *work(history)* in one transaction; a history that cannot be used is a warning (None)."""
    try:
        history = History.open(path)
        try:
            with history.transaction():
                return work(history)
        finally:
            history.close()
    except HistoryError as error:
        _log.warning("the upload is not recorded: %s", error)
        return None


def _requested(history_path: str, series: str, path: str, destination: str) -> None:
    _history(history_path, lambda h: h.upload_requested(series, path, destination, time.time()))


def _ended(history_path: str, path: str, destination: str, state: str, key: str | None, message: str) -> None:
    _history(history_path, lambda h: h.upload_ended(path, destination, state, key, message, time.time()))
