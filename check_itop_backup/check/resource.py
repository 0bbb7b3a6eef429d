"""Data acquisition: the ``ItopBackup`` nagiosplugin Resource.

It asks the schedule which backup is due, the finder which archive to judge and the
history how big the earlier archives were, and yields numbers for the contexts in
``contexts.py``: ``missing`` (1 when the due backup has no archive), ``overdue`` (s since the
due start, while that backup is still being written past its grace), ``leftovers`` (what
killed restores left in the iTop root and could not be cleaned, recovery.py), ``age`` (s),
``size`` (B), ``world_readable`` (1/0), ``size_change`` (% against the baseline),
``baseline`` (B), ``size_z``, ``history`` (archives known), and when configured
``size_reduction`` (% smaller than the previous archive, iTop's rule), ``retention_missing``
(retained archives not found), ``verified`` (1/0), ``verification_warnings``
(verification.py, which caches its results in the history; with ``--verify restore`` the newest
test restore of the series is kept as ``restore_test`` for the Prometheus and Checkmk formats),
``rows_<table>`` for each ``--table-shrink`` table (tabledrift.py), with ``--itop-cron``
iTop's scheduler's (cron.py) and with ``--offsite`` the copy's (offsite.py). What the texts
need besides the numbers (the selection, the trend, the file mode...) stays on the resource as
attributes.
Otherwise it only reads the history; the verdict is written back in one transaction once
known (``record_verdict``). It raises ``CheckError`` only when it cannot tell.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta

import nagiosplugin

from check_itop_backup import deadline
from check_itop_backup.check.finder import (
    ArchiveFile,
    FinderError,
    Runner,
    Selection,
    find_runner,
    list_series,
    select,
    world_readable,
)
from check_itop_backup.check.settings import CheckSettings
from check_itop_backup.check.trend import SizeTrend, change_from, size_trend
from check_itop_backup.check.verification import Verification, Verifier
from check_itop_backup.history import History, HistoryError, VerificationRecord
from check_itop_backup.itop.naming import TOKEN

log = logging.getLogger(__name__)


class Learning:
    """Too few earlier archives for a trend: *samples* of the *needed*."""

    def __init__(self, samples: int, needed: int) -> None:
        self.samples, self.needed = samples, needed


class ItopBackup(nagiosplugin.Resource):
    """The newest backup archive of one iTop instance."""

    def __init__(self, settings: CheckSettings, history: History, verifier: Verifier | None = None,
                 offsite: object | None = None, scheduler: object | None = None) -> None:
        self.settings = settings
        self.offsite = offsite  # check/offsite.py's OffsiteProbe with --offsite
        self.history = history
        self.verifier = verifier
        self.scheduler = scheduler  # cron.py's SchedulerCheck with --itop-cron
        self.selection: Selection | None = None
        self.leftovers: list[str] = []  # what killed restores left and could not be cleaned
        self.mode: int | None = None  # the judged archive's mode when world-readable
        self.trend: SizeTrend | None = None
        self.learning: Learning | None = None  # instead of a trend: too few earlier archives
        self.previous: str | None = None  # the archive size_reduction compares with
        self.retention: tuple[int, int] | None = None  # archives found, archives expected
        self.verification: Verification | None = None
        self.restore_test: VerificationRecord | None = None  # with --verify restore: the newest test restore
        self.drift: dict[str, object] = {}  # metric name (rows_<table>) -> TableDrift
        self.portability: dict[str, str] = {}  # metric name (portability_<kind>) -> its sentence

    @property
    def name(self) -> str:
        return "ITOP_BACKUP"

    @property
    def series(self) -> str:
        return self.settings.pattern.pattern

    def probe(self) -> Iterator[nagiosplugin.Metric]:
        settings = self.settings
        slot = settings.due_slot
        previous_slot = settings.schedule.last_due_slot(slot - timedelta(seconds=1), timedelta(0))
        with deadline.current.stage(f"listing archives {settings.pattern.glob}"):
            try:
                archives = list_series(settings.pattern)
                runner = self._runner()
            except FinderError as error:
                raise nagiosplugin.CheckError(str(error)) from None
        log.info("%d archive(s) of %s on disk", len(archives), settings.pattern.pattern)
        current_slot = settings.schedule.last_due_slot(settings.local_now, timedelta(0))
        self.selection = select(settings.pattern, archives, slot, previous_slot, current_slot,
                                settings.to_epoch, settings.now.timestamp(), settings.settle, runner)
        yield from self._archive_metrics(self.selection)
        root = settings.instance.root
        if root:
            with deadline.current.stage(f"looking for what killed restores left in {root}"):
                self.leftovers = self._leftovers(root)
            yield nagiosplugin.Metric("leftovers", len(self.leftovers), min=0)
        if self.scheduler is not None:
            yield from self.scheduler.metrics(settings)
        judged = self.selection.judged
        if judged is None:
            return
        age = max(0, int(settings.now.timestamp() - judged.mtime))
        yield nagiosplugin.Metric("age", age, uom="s", min=0)
        yield nagiosplugin.Metric("size", judged.size, uom="B", min=0)
        self.mode = world_readable(judged.path)
        yield nagiosplugin.Metric("world_readable", int(self.mode is not None), min=0, max=1)
        with deadline.current.stage(f"reading the history {self.history.path}"):
            try:
                yield from self._history_metrics(judged, archives)
            except HistoryError as error:
                raise nagiosplugin.CheckError(str(error)) from None
        if self.verifier is not None:
            restore = self.verifier.settings.level == "restore"
            try:
                if restore:  # the one before this run's, should this run's not finish
                    self.restore_test = self.history.latest_verification(self.series, "restore")
                verification = self.verifier.verify(judged, self.series, self.history,
                                                    settings.now.timestamp())
                if restore and verification.level == "restore":
                    self.restore_test = self.history.latest_verification(self.series, "restore")
            except (HistoryError, OSError) as error:
                raise nagiosplugin.CheckError(f"cannot verify {judged.path}: {error}") from None
            self.verification = verification
            yield nagiosplugin.Metric("verified", int(verification.state != "critical"), min=0, max=1)
            yield nagiosplugin.Metric("verification_warnings", len(verification.warnings), min=0)
            for drift in verification.drift:
                name = f"rows_{drift.table}"
                self.drift[name] = drift
                yield nagiosplugin.Metric(name, drift.rows or 0, min=0, context="table_rows")
            if self.verifier.settings.portable:
                for kind, sentence in verification.portability:
                    self.portability[f"portability_{kind}"] = sentence
                    yield nagiosplugin.Metric(f"portability_{kind}", 1, context="portability")
        if self.offsite is not None:
            yield from self.offsite.metrics(judged, settings.pattern, settings.now.timestamp(), self.history,
                                            self.series, verify=self.verifier is not None)

    def _archive_metrics(self, selection: Selection) -> Iterator[nagiosplugin.Metric]:
        """``missing``: 1 when the due backup has no archive (what is being written is never
        missing); ``overdue``: while the due backup is still being written past its grace."""
        there = selection.judged is not None and selection.on_time
        writing_first = selection.in_progress is not None and selection.judged is None
        yield nagiosplugin.Metric("missing", int(not (there or writing_first)), min=0, max=1)
        if selection.overdue_slot is not None:
            settings = self.settings
            overdue = settings.now.timestamp() - settings.to_epoch(selection.overdue_slot)
            yield nagiosplugin.Metric("overdue", overdue, uom="s", min=0)

    def _runner(self) -> Runner | None:
        """What the runner does in the archives' directory (None: it does not write there)."""
        directory = os.path.dirname(self.settings.pattern.pattern) or "."
        if TOKEN.search(directory):
            return None
        return find_runner(directory, self.settings.now.timestamp(), self.settings.settle)

    def _leftovers(self, root: str) -> list[str]:
        """Clean what killed restores left (recovery.py): in the iTop root, and on the server when
        test restores run; return what remains."""
        from check_itop_backup.database.recovery import recover

        database = None
        if self.verifier is not None and self.verifier.settings.level == "restore":
            database = self.verifier.settings.database
        done, problems = recover(database, root)
        for line in done:
            log.warning("%s", line)
        return problems

    def _history_metrics(self, judged: ArchiveFile, archives: list[ArchiveFile]
                         ) -> Iterator[nagiosplugin.Metric]:
        settings = self.settings
        earlier = self._earlier_archives(judged, archives)
        good = [a.size for a in earlier if a.verdict != "critical"][:settings.baseline_count]
        if len(good) >= settings.min_history:
            trend = self.trend = size_trend(judged.size, good)
            yield nagiosplugin.Metric("size_change", round(trend.change, 1), uom="%")
            yield nagiosplugin.Metric("baseline", int(trend.baseline), uom="B", min=0, context="report")
            yield nagiosplugin.Metric("size_z", round(trend.z, 2), context="report")
        else:
            self.learning = Learning(len(good), settings.min_history)
        known = self._count_known(archives)
        yield nagiosplugin.Metric("history", known, min=0, context="report")
        if settings.size_reduction_max is not None and earlier:
            change = change_from(judged.size, earlier[0].size)
            if change is not None:
                self.previous = earlier[0].path
                yield nagiosplugin.Metric("size_reduction", -change, uom="%")
        if settings.retention_count:
            expected = min(settings.retention_count, known)
            self.retention = (len(archives), expected)
            yield nagiosplugin.Metric("retention_missing", max(0, expected - len(archives)), min=0)

    def _earlier_archives(self, judged: ArchiveFile, archives: list[ArchiveFile]) -> list:
        """Archives before *judged*, newest first: the history's, plus those on disk it lacks."""
        limit = self.settings.baseline_count + len(archives)
        recorded = self.history.archives_before(self.series, judged.mtime, limit)
        identities = {(r.path, r.size, r.mtime, r.inode) for r in recorded}
        unrecorded = [_Unjudged(a) for a in archives if a.mtime < judged.mtime
                      and (a.path, a.size, a.mtime, a.inode) not in identities]
        return sorted(list(recorded) + unrecorded, key=lambda a: a.mtime, reverse=True)

    def _count_known(self, archives: list[ArchiveFile]) -> int:
        """How many distinct archives of the series exist or existed, this run's included."""
        oldest = min(a.mtime for a in archives)
        known = self.history.known_identities(self.series, oldest)
        new = [a for a in archives if (a.path, a.size, a.mtime, a.inode) not in known]
        return self.history.count_archives(self.series) + len(new)


class _Unjudged:
    """An archive on disk the history has not recorded yet: no verdict."""

    verdict = None

    def __init__(self, archive: ArchiveFile) -> None:
        self.path, self.size, self.mtime = archive.path, archive.size, archive.mtime


# The history names the causes of a verdict as it always has: a metric's cause, when it differs.
CAUSES = {"missing": "archive", "overdue": "archive", "world_readable": "exposure",
          "size_change": "trend", "retention_missing": "retention", "verified": "verification",
          "verification_warnings": "verification"}
# causes about the archive itself
ARCHIVE_QUALITY = {"size", "trend", "size_reduction", "verification", "tables"}


def cause(metric: nagiosplugin.Metric) -> str:
    """What the history records as the cause of a result about *metric*."""
    if metric.context in ("table_rows", "itop_cron", "portability"):
        return {"table_rows": "tables", "itop_cron": "scheduler"}.get(metric.context, "portability")
    return CAUSES.get(metric.name, metric.name)


def record_verdict(check: nagiosplugin.Check) -> list[str]:
    """Write every archive seen on disk, the judged one's verdict, and the series' verdict when
    it changed, in one transaction.

    The verdict stored with the archive is the worst of the results about the archive itself
    (not lateness, which is the schedule's fault, not the archive's): a CRITICAL one stays out
    of baselines. The series' verdict is the check's state, with the status line as its reason;
    it is written when the judged archive, the state or the results that are not OK change.
    """
    resource = check.resources[0]
    selection = resource.selection
    if selection is None:  # the probe did not finish: nothing was judged
        return []
    states = [r.state for r in check.results if r.metric is not None and cause(r.metric) in ARCHIVE_QUALITY]
    verdict = str(max(states)) if states else None
    causes = ",".join(sorted({cause(r.metric) for r in check.results
                              if r.metric is not None and r.state != nagiosplugin.Ok}))
    now = resource.settings.now.timestamp()
    history = resource.history
    with deadline.current.stage(f"writing the history {history.path}"), history.transaction():
        judged_id = None
        for archive in selection.archives:
            record = history.record_archive(
                resource.series, archive.path, archive.size, archive.mtime, archive.inode, now,
                verdict if archive == selection.judged else None)
            if archive == selection.judged:
                judged_id = record.id
        history.record_verdict_change(resource.series, judged_id, str(check.state), causes,
                                      check.summary_str, now)
    return []
