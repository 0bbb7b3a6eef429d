"""Restore into the target database itself, for an account that may not create a scratch database.

iTop's usual account has ALL on the iTop database only: iTop's ``restore.php`` loads the dump
straight into that database, and this path does too (restore.py takes it when the scratch
database is refused), with what iTop's lacks around the load: the archive is verified first
and iTop is in maintenance mode (restore.py), the target's previous content is first saved by
the runner (run.py: the same dump as ``itop-backup run``) as
``<db>-before-restore-<time>-<token>.tar.gz``, and when the load fails (a statement, a
timeout, SIGTERM) the tables the load created are dropped and the saved dump is loaded back.
The saved archive is kept either way.

What the scratch path gives and this one cannot: the target is not replaced atomically
(while the dump loads, the database holds a mix, which maintenance mode hides from iTop's
users), and after kill -9 in the middle of the load the target stays half-loaded: put it
back with ``itop-backup restore`` of the saved archive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from check_itop_backup import deadline
from check_itop_backup.backup.restore import RestoreError
from check_itop_backup.database.load import LoadResult, SwapResult, load_dump
from check_itop_backup.database.server import (
    DatabaseError,
    create_database,
    drop_all_but,
    drop_database,
    schema_objects,
)
from check_itop_backup.itop.instance import DatabaseSettings

SAVED_NAME = "{db}-before-restore-%Y-%m-%d_%H_%M-{token}"


@dataclass(frozen=True)
class InPlaceResult:
    """A dump loaded into the target itself; *saved* holds the target's previous content."""

    load: LoadResult
    swap: SwapResult
    saved: str


def load_in_place(archive: str, settings: DatabaseSettings, existing: list[str] | None,
                  dump_tables: tuple[str, ...], *, token: str, program: str, version: str,
                  files: Any = None, keep_dir: str, config_path: str = "") -> InPlaceResult:
    """Save the target (unless it has no tables), load *archive*'s dump into it, and put the
    saved content back when the load fails; raise RestoreError saying so.

    *existing* are the target's tables (None: no such database, created here and dropped on
    failure); *files* (``check_placement()``) are checked before the load counts as done.
    """
    saved = save_target(settings, keep_dir, token, config_path) if existing else ""
    if existing is None:
        create_database(settings)
    try:
        loaded = load_dump(archive, settings, settings.name, token=token, program=program, version=version,
                           files=files)
        if files:
            files.check_placement()
    except BaseException as error:
        with deadline.shielded():
            put_back(settings, existing, saved, token=token, program=program, version=version)
        if isinstance(error, (DatabaseError, deadline.StageTimeoutError)):
            source = f" from {saved}" if saved else ""
            raise RestoreError(f"{error}; {settings.name} was put back as it was{source}") from None
        raise
    return InPlaceResult(loaded, _changes(settings, existing or [], dump_tables), saved)


def save_target(settings: DatabaseSettings, keep_dir: str, token: str, config_path: str = "") -> str:
    """Dump the target with the runner into *keep_dir*; return the archive's path.

    Raise RestoreError (nothing touched yet) when it cannot be saved.
    """
    from check_itop_backup.backup.run import BackupError, BackupJob, run_backup
    from check_itop_backup.itop.naming import NamePattern

    spec = os.path.join(keep_dir, SAVED_NAME.format(db=settings.name, token=token))
    job = BackupJob(pattern=NamePattern.from_spec(spec), database=settings, config_path=config_path,
                    database_only=not config_path)
    try:
        return run_backup(job).archive
    except BackupError as error:
        raise RestoreError(f"cannot save {settings.name} before loading into it ({error}): "
                           "nothing was touched") from None


def put_back(settings: DatabaseSettings, existing: list[str] | None, saved: str, *, token: str,
             program: str, version: str) -> None:
    """Undo a failed load: drop what it created, reload the saved content (or drop the
    database it was loaded into when there was none)."""
    if existing is None:
        drop_database(settings, settings.name)
        return
    drop_all_but(settings, existing)
    if saved:
        try:
            load_dump(saved, settings, settings.name, token=token, program=program, version=version)
        except DatabaseError as error:
            raise RestoreError(f"putting {settings.name} back from {saved} failed too ({error}): "
                               f"restore {saved} by hand") from None


def _changes(settings: DatabaseSettings, existing: list[str], dump_tables: tuple[str, ...]) -> SwapResult:
    objects = schema_objects(settings, settings.name)
    loaded = set(dump_tables)
    views = set(objects["views"])
    return SwapResult(tables=tuple(name for name in objects["tables"] if name in loaded),
                      views=tuple(objects["views"]), triggers=tuple(objects["triggers"]),
                      replaced=tuple(name for name in existing if name in loaded or name in views),
                      kept=tuple(name for name in existing if name not in loaded and name not in views))
