"""Restore an archive: verified first, loaded into a scratch database, swapped in, files placed.

``restore_archive(archive, settings, force=...)`` (``itop-backup restore``):

1. verifies the archive at the ``dump`` level (archive/inspect.py) and refuses a bad one
   before any statement runs; with an iTop root, refuses an archive taken from another iTop
   version or other module versions than the code there (itop/modules.py), unless *force*;
   finishes or undoes what killed restores left (``recover``);
2. refuses a target database that has tables, unless *force*;
3. loads ``itop-dump.sql`` from the archive into a uniquely named scratch database
   (database/load.py: streamed, checked line by line, as a temporary account) while the
   other members are staged under the iTop root (archive/extract.py), in maintenance mode;
4. swaps the loaded tables into the target atomically (database/load.py ``swap_into``),
   then places the staged files;
5. drops the scratch database, whatever happened (failure, timeout, SIGTERM).

When the account may not create a scratch database, the dump is loaded into the target
itself (inplace.py). What is not kept: tables of the target that are not in the dump stay
as they are (iTop's restore does the same; they are reported). Between the swap and the
re-creation of views and triggers (milliseconds) those are missing. A dump holding stored
routines or events is refused at the swap, target untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from check_itop_backup import deadline
from check_itop_backup.archive.extract import (
    FilesError,
    FilesJournal,
    StagedFiles,
    maintenance_mode,
)
from check_itop_backup.archive.layout import config_path
from check_itop_backup.database.load import LoadResult, SwapResult, find_client_program, load_dump, swap_into
from check_itop_backup.database.recovery import recover
from check_itop_backup.database.server import (
    SCRATCH_PREFIX,
    DatabaseError,
    ScratchRefusedError,
    create_database,
    new_token,
    run_lock,
    scratch_database,
    server_version,
    target_tables,
)
from check_itop_backup.itop.instance import DatabaseSettings

_log = logging.getLogger(__name__)


class RestoreError(Exception):
    """The restore failed; the message is one line for people."""


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: the load, the swap, the files written, warnings for people."""

    archive: str
    database: str
    load: LoadResult
    swap: SwapResult
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    path: str = ""  # one line: through a scratch database, or into the target itself


@contextlib.contextmanager
def _told_as_restore_errors():
    """The database layer's failures, as the restore's (same one-line message)."""
    try:
        yield
    except DatabaseError as error:
        raise RestoreError(str(error)) from None


@_told_as_restore_errors()
def restore_archive(archive: str, settings: DatabaseSettings, *, force: bool = False, itop_root: str = "",
                    environment: str = "production", bindir: str = "", keep_dir: str = "") -> RestoreResult:
    """Restore *archive* into ``settings.name`` (and its files into *itop_root* when given).

    Through a scratch database swapped in, or, when the account may not create one, into the
    target itself (inplace.py: its previous content saved first into *keep_dir*, default the
    archive's directory, and put back when the load fails).
    Raise RestoreError (target database and files unchanged) when the archive does not verify,
    the target has tables and not *force*, or the load fails; OSError when the archive cannot
    be read. ``StageTimeoutError`` (timeout, SIGTERM) passes through; the scratch database,
    the staged files and the maintenance file are removed on every way out.
    """
    from check_itop_backup.archive.inspect import verify_archive

    report = verify_archive(archive, "dump")
    if report.state == "critical":
        raise RestoreError(f"{archive} does not verify, nothing was touched: {report.reason}")
    if report.container != "tar.gz":
        raise RestoreError(f"{archive} is a {report.container} archive: only .tar.gz archives are restored")
    fit = _version_fit(archive, report.installation, itop_root, environment, force) if itop_root else []
    program = find_client_program(bindir)
    version = server_version(settings)
    cleaned, not_cleaned = recover(settings, itop_root)
    existing = target_tables(settings)
    if existing and not force:
        shown = ", ".join(existing[:5]) + (", …" if len(existing) > 5 else "")
        raise RestoreError(f"database {settings.name} has {len(existing)} tables ({shown}): "
                           "give --force to replace them")
    token = new_token()
    try:
        with contextlib.ExitStack() as stack:
            files = journal = None
            if itop_root:
                journal = stack.enter_context(FilesJournal(itop_root, token, environment))
                stack.enter_context(maintenance_mode(itop_root, journal))
                files = stack.enter_context(StagedFiles(itop_root, environment, staging=journal.staging))
            try:
                loaded, swapped = _through_scratch(archive, settings, existing, token=token, program=program,
                                                   version=version, files=files)
                path = (f"path: loaded into the scratch database {SCRATCH_PREFIX}{token}, then swapped "
                        f"into {settings.name} atomically")
            except ScratchRefusedError:
                from check_itop_backup.backup.inplace import load_in_place

                config = os.path.join(itop_root, config_path(environment)) if itop_root else ""
                stack.enter_context(run_lock(settings, token))
                done = load_in_place(archive, settings, existing, report.tables, token=token, program=program,
                                     version=version, files=files,
                                     keep_dir=keep_dir or os.path.dirname(os.path.abspath(str(archive))),
                                     config_path=config if os.path.isfile(config) else "")
                loaded, swapped = done.load, done.swap
                saved = f"; its previous content is in {done.saved}" if done.saved else ""
                path = (f"path: loaded into {settings.name} itself, as iTop's restore does (this account "
                        f"may not create a scratch database){saved}")
            if files and journal:
                journal.note(swapped=True)
                _place(files, journal, settings.name, swapped)
            placed = tuple(files.written) if files else ()
            skipped = tuple(files.skipped) if files else ()
    except FilesError as error:
        raise RestoreError(f"{error}: nothing was written, {settings.name} and {itop_root} are unchanged") \
            from None
    warnings = fit + cleaned + not_cleaned + list(report.warnings) + list(loaded.warnings)
    if swapped.kept:
        warnings.append(f"{len(swapped.kept)} table(s) of {settings.name} not in the dump were left "
                        f"as they are: {', '.join(swapped.kept)}")
    warnings += [f"link member {name} was not restored" for name in skipped]
    return RestoreResult(archive, settings.name, loaded, swapped, placed, tuple(warnings), path)


def _version_fit(archive: str, taken_from: Any, itop_root: str, environment: str, force: bool) -> list[str]:
    """Compare the archive's iTop version and modules with the code in *itop_root*: raise
    RestoreError naming the differences unless *force*; return warnings."""
    from check_itop_backup.itop.modules import code_installation, differences

    try:
        code = code_installation(itop_root, environment)
    except OSError as error:  # no iTop code there (a root holding only conf/ and data/): nothing to compare
        _log.info("%s: the iTop version is unknown, not compared: %s", itop_root, error.strerror or error)
        return []
    if taken_from is None:
        return [f"{os.path.basename(archive)} does not say which iTop it was taken from (no "
                f"priv_module_install rows): not compared with {code.describe()} in {itop_root}"]
    found = differences(taken_from, code)
    if not found:
        return []
    shown = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
    text = (f"{os.path.basename(archive)} was taken from {taken_from.describe()}, the code in {itop_root} "
            f"is {code.describe()}: {shown}")
    if not force:
        raise RestoreError(f"{text}; nothing was touched: restoring it would leave a database not aligned "
                           "with the code base (give --force to restore anyway, then run iTop's setup)")
    return [f"{text} (restored anyway: --force; run iTop's setup)"]


def _through_scratch(archive: str, settings: DatabaseSettings, existing: list[str] | None, *, token: str,
                     program: str, version: str, files: Any) -> tuple[LoadResult, SwapResult]:
    """Load into a scratch database, then swap it into the target; ScratchRefusedError when the
    account may not create one (nothing touched)."""
    with scratch_database(settings, token=token) as scratch:
        loaded = load_dump(archive, settings, scratch, token=token, program=program, version=version,
                           files=files)
        if files:
            files.check_placement()
        with deadline.current.stage(f"swapping the restored tables into {settings.name}"):
            if existing is None:  # created only now: a failed load leaves no empty database
                create_database(settings)
            return loaded, swap_into(settings, scratch)


def _place(files, journal: FilesJournal, target: str, swapped: SwapResult) -> None:
    """Place the staged files after the swap; a failure says what was replaced and what was
    not, and leaves the rest staged with its journal, for the next restore to place."""
    try:
        files.place()
    except (FilesError, OSError) as error:
        files.keep = journal.keep = True
        reason = f"{error.strerror}: {error.filename}" if isinstance(error, OSError) else str(error)
        placed = ", ".join(files.written) or "none"
        raise RestoreError(f"{target} was replaced ({len(swapped.tables)} tables) but placing the files "
                           f"failed ({reason}); placed: {placed}; the rest is still staged and a later "
                           "restore into the same root places it") from None
