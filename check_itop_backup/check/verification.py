"""The probe's deep verification: options, cache, and comparisons of table sets.

``Verifier.verify(archive, series, history, now)`` runs archive/inspect.py's ``verify_archive`` on the
judged archive at most once per archive identity (path, size, mtime, inode): the result is
cached in the history's ``verifications`` table, and reused until ``--verify-every`` has
passed (never, by default). Only a finished verification is stored: a timeout raises
``StageTimeoutError`` before anything is written. It then compares the archive's table set
with the previous verified archive of the series (a vanished table is a warning), the rows
of the ``--table-shrink`` tables with the median of the previous verified archives
(tabledrift.py) and, with ``--compare-live-db``, with the live database of the iTop instance
(itop/instance.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections import namedtuple
from types import SimpleNamespace

from check_itop_backup import deadline
from check_itop_backup.history import History, VerificationRecord
from check_itop_backup.itop.instance import DatabaseSettings, ItopInstance
from check_itop_backup.units import format_duration, parse_duration

log = logging.getLogger(__name__)

LEVELS = ("stat", "archive", "dump", "restore")


class VerifySettings(SimpleNamespace):
    """By keyword: ``level`` (one of LEVELS), ``every`` (seconds between re-verifications of one
    archive, None for once), ``compare_live_db`` (bool), ``database`` (the instance's
    DatabaseSettings: the live database, and the server of test restores), ``restore_every``
    (seconds between test restores of a series with ``--verify restore``; archives in between are
    verified at ``dump`` level), ``watched`` (the tables whose rows are compared with the median
    of ``baseline_count`` previous verified archives), ``shrink_warning``/``shrink_critical``
    (how many percent fewer rows than that median are a WARNING, a CRITICAL), ``portable``
    (report what keeps the dump from loading elsewhere)."""


def verify_settings(args: object, instance: ItopInstance) -> VerifySettings:
    """Return the verification settings of parsed *args* (an argparse Namespace) for *instance*;
    raise ValueError with a one-line message."""
    every = None
    if args.verify_every:
        every = parse_duration(args.verify_every)
    if args.compare_live_db and args.verify != "dump":
        raise ValueError("--compare-live-db needs --verify dump")
    if args.portable and args.verify not in ("dump", "restore"):
        raise ValueError("--portable needs --verify dump (the lint reads the dump)")
    if args.table_shrink_critical < args.table_shrink_warning:
        raise ValueError("--table-shrink-critical must be at least --table-shrink-warning")
    if args.compare_live_db and not instance.database.name:
        raise ValueError("--compare-live-db needs --itop-config or --db-name (the live database)")
    watched = ()
    if args.verify in ("dump", "restore"):  # the stat-level probe imports nothing more
        from check_itop_backup.check.tabledrift import watched_tables

        watched = tuple(watched_tables(args.table_shrink, instance.database.subname))
    return VerifySettings(level=args.verify, every=every, compare_live_db=args.compare_live_db,
                          database=instance.database, restore_every=parse_duration(args.restore_every),
                          watched=watched, baseline_count=args.baseline_count, portable=args.portable,
                          shrink_warning=args.table_shrink_warning,
                          shrink_critical=args.table_shrink_critical)


class Verification(namedtuple("Verification", "level reached state reason verified_at cached tables "
                                               "findings previous stats installation drift portability",
                               defaults=((), None, None, None, (), ()))):
    """The judged archive's verification as the probe reports it.

    ``state``/``reason`` are the archive's own result; ``findings`` are warnings from comparing
    its ``tables`` (vanished since ``previous``, or missing against the live database).
    ``stats`` are its tables' ``[rows, bytes]`` (those holding rows; None when not counted),
    ``installation`` iTop's version and modules
    (``{"version", "modules"}``, None when unknown), ``drift`` the watched tables' TableDrift,
    ``portability`` the dump's ``[kind, sentence]`` findings (archive/portability.py).
    A named tuple, not a dataclass: this module is on the probe's start-up path.
    """

    __slots__ = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        """What is wrong without failing the archive: its own warning, then the findings."""
        return ((self.reason,) if self.state == "warning" else ()) + self.findings

    def __str__(self) -> str:
        """One line (what ``--format json`` shows): level reached, state, reason, findings."""
        return "; ".join((f"{self.reached} level reached, {self.state}: {self.reason}",) + self.findings)


class Verifier:
    """Verifies the probe's judged archive with *settings*, through the history's cache."""

    def __init__(self, settings: VerifySettings) -> None:
        self.settings = settings

    def verify(self, archive: object, series: str, history: History, now: float) -> Verification:
        """Return the verification of *archive* (an ArchiveFile: path, size, mtime, inode).

        Raise HistoryError when the history cannot be read or written, OSError when the
        archive cannot be opened; ``StageTimeoutError`` passes through, with nothing cached.
        """
        level = self.settings.level
        if level == "restore":
            last = history.previous_verification(series, float("inf"), "restore")
            if last is not None and now - last.verified_at < self.settings.restore_every:
                log.info("last test restore %s: %s; verifying at dump level", last.path, last.message)
                level = "dump"
        cached = history.verification(archive.path, archive.size, archive.mtime, archive.inode,
                                      LEVELS[LEVELS.index(level):])
        if cached is not None and (self.settings.every is None
                                   or now - cached.verified_at < self.settings.every):
            log.info("%s: %s-level verification from %s ago (cached)", archive.path, cached.level,
                     format_duration(now - cached.verified_at))
            result = _from_record(cached, cached=True)
        else:
            result = self._verify_now(archive, series, history, now, level)
        if result.state == "critical" or level != "dump":
            return result
        earlier = history.previous_verifications(series, archive.mtime, "dump",
                                                 max(1, self.settings.baseline_count))
        previous = earlier[0] if earlier else None
        findings = _vanished(result.tables, previous)
        if self.settings.compare_live_db:
            findings += _missing_from_dump(result.tables, self.settings.database)
        drift = ()
        if self.settings.watched and result.stats is not None:  # not counted before this version
            from check_itop_backup.check.tabledrift import table_counts, table_drift

            current = table_counts({"tables": result.tables, "table_stats": result.stats})
            drift = tuple(table_drift(current, [table_counts(_details(record)) for record in earlier],
                                      list(self.settings.watched)))
        return result._replace(findings=tuple(findings), previous=previous.path if previous else None,
                               drift=drift)

    def _verify_now(self, archive: object, series: str, history: History, now: float,
                    level: str) -> Verification:
        from check_itop_backup.archive.inspect import verify_archive

        report = _test_restore(archive.path, self.settings.database) if level == "restore" \
            else verify_archive(archive.path, level)
        log.info("%s: verified to %s level in %.1fs: %s", archive.path, report.reached,
                 report.seconds, report.reason)
        details = report.details()
        with deadline.current.stage(f"writing the verification to the history {history.path}"), \
                history.transaction():
            record = history.record_archive(series, archive.path, archive.size, archive.mtime,
                                            archive.inode, now)
            history.record_verification(record.id, report.level, report.state, report.reason,
                                        json.dumps(details), now)
        return Verification(level=report.level, reached=report.reached, state=report.state,
                            reason=report.reason, verified_at=now, cached=False, tables=report.tables,
                            stats=details.get("table_stats"), installation=details.get("itop"),
                            portability=tuple(map(tuple, details.get("portability") or ())))


def _test_restore(path: str, database: DatabaseSettings):
    """The restore-level report; a server that cannot be used is an OSError (UNKNOWN: cannot tell)."""
    from check_itop_backup.database.server import DatabaseError
    from check_itop_backup.database.testrestore import verify_by_restore

    try:
        return verify_by_restore(path, database)
    except DatabaseError as error:
        raise OSError(f"test restore impossible: {error}") from None


def _details(record: VerificationRecord) -> dict:
    details = json.loads(record.details or "{}")
    return details if isinstance(details, dict) else {}


def _from_record(record: VerificationRecord, cached: bool) -> Verification:
    details = _details(record)
    return Verification(level=record.level, reached=details.get("reached", record.level),
                        state=record.state, reason=record.message, verified_at=record.verified_at,
                        cached=cached, tables=tuple(details.get("tables", ())),
                        stats=details.get("table_stats"), installation=details.get("itop"),
                        portability=tuple(map(tuple, details.get("portability") or ())))


def _vanished(tables: tuple[str, ...], previous: VerificationRecord | None) -> list[str]:
    if previous is None:
        return []
    present = set(tables)
    gone = [table for table in _from_record(previous, cached=True).tables if table not in present]
    if not gone:
        return []
    from check_itop_backup.archive.tar import name_list

    return [f"{_plural(gone, 'table')} vanished since {os.path.basename(previous.path)}: "
            f"{name_list(gone)}"]


def _plural(items: list[str], word: str) -> str:
    return f"{len(items)} {word}{'s' * (len(items) != 1)}"


def _missing_from_dump(tables: tuple[str, ...], database: DatabaseSettings) -> list[str]:
    """Compare with the live database's tables; any problem is a finding, never an exception."""
    from check_itop_backup.database.server import DatabaseError, live_tables

    with deadline.current.stage("comparing tables with the live database"):
        try:
            live = live_tables(database)
        except DatabaseError as error:
            return [f"cannot compare with the live database: {error}"]
    present = set(tables)
    missing = [table for table in live if table not in present]
    if not missing:
        return []
    return [f"{_plural(missing, 'table')} of the live database missing from the dump: {', '.join(missing)}"]
