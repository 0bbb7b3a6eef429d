"""Data acquisition: the ``ItopBackup`` nagiosplugin Resource.

It asks the schedule which backup is due, the finder which archive to judge, and yields
the metrics the contexts in ``verdict.py`` judge: ``archive`` (the selection itself),
``age`` (s) and ``size`` (B). It raises ``CheckError`` only when it cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import nagiosplugin

from check_itop_backup import deadline
from check_itop_backup.config import CheckSettings
from check_itop_backup.finder import FinderError, Selection, list_series, select

log = logging.getLogger(__name__)


class ItopBackup(nagiosplugin.Resource):
    """The newest backup archive of one iTop instance."""

    def __init__(self, settings: CheckSettings) -> None:
        self.settings = settings
        self.selection: Selection | None = None

    @property
    def name(self) -> str:
        return "ITOP_BACKUP"

    def probe(self) -> Iterator[nagiosplugin.Metric]:
        settings = self.settings
        slot = settings.schedule.last_due_slot(settings.local_now, settings.grace)
        previous_slot = settings.schedule.last_due_slot(slot - timedelta(seconds=1), timedelta(0))
        with deadline.current.stage(f"listing archives {settings.pattern.glob}"):
            try:
                archives = list_series(settings.pattern)
            except FinderError as error:
                raise nagiosplugin.CheckError(str(error)) from None
        log.info("%d archive(s) of %s on disk", len(archives), settings.pattern.pattern)
        self.selection = select(settings.pattern, archives, slot, previous_slot,
                                settings.to_epoch, settings.now.timestamp(), settings.settle)
        yield nagiosplugin.Metric("archive", self.selection, context="archive")
        judged = self.selection.judged
        if judged is not None:
            age = max(0, int(settings.now.timestamp() - judged.mtime))
            yield nagiosplugin.Metric("age", age, uom="s", min=0, context="age")
            yield nagiosplugin.Metric("size", judged.size, uom="B", min=0, context="size")
