"""iTop's own scheduler, with ``--itop-cron``: is ``cron.php`` running iTop's scheduled backup?

Scheduled backups run from ``cron.php`` as the background task ``BackupExec``; when cron.php
stops nothing runs and nothing alarms, and when a run dies its row keeps ``running = 1``
(database/scheduler.py). ``SchedulerCheck`` reads that row once per probe and yields:

* ``cron_lag`` (s since the task's ``next_run_date``, 0 before it): CRITICAL past ``--grace``
  while backups are enabled: cron.php has not run since then;
* ``backup_task_duration`` (s: since the start of the run under way, else the last run's):
  CRITICAL when running longer than the task's longest run plus ``--grace`` (stuck or failed);
* ``backup_task_enabled`` (1/0): WARNING when the config's ``itop-backup`` ``enabled`` is false
  or the task is not ``active``, while this check expects scheduled backups;
* ``backup_task_missing`` (1): CRITICAL, there is no ``BackupExec`` row: cron.php never ran.

Its dates are wall-clock times in iTop's timezone (the probe's, itop/instance.py). A database
that cannot be read yields no metric: ``error`` says why, and the file verdict stands.
"""

from __future__ import annotations

import nagiosplugin
from nagiosplugin.performance import Performance
from nagiosplugin.state import Critical, Ok, Warn

from check_itop_backup import deadline
from check_itop_backup.check.contexts import Finding, describe_slot
from check_itop_backup.check.settings import CheckSettings
from check_itop_backup.itop.instance import DatabaseSettings
from check_itop_backup.units import format_duration


def backups_enabled(module: dict) -> bool:
    """The ``itop-backup`` module's ``enabled`` as iTop reads it (true when unset).

    >>> backups_enabled({}), backups_enabled({"enabled": False}), backups_enabled({"enabled": "1"})
    (True, False, True)
    """
    from check_itop_backup.itop.phpconfig import setting_flag

    return "enabled" not in module or setting_flag(module, "enabled")


class SchedulerCheck:
    """Reads ``BackupExec``'s row from *database* and turns it into the metrics above."""

    def __init__(self, database: DatabaseSettings, enabled: bool) -> None:
        self.database = database
        self.enabled = enabled
        self.task = None  # database/scheduler.py's BackgroundTask once read
        self.error: str | None = None  # why it could not be read

    def metrics(self, settings: CheckSettings):
        from check_itop_backup.database.scheduler import TABLE, backup_task
        from check_itop_backup.database.server import DatabaseError

        with deadline.current.stage(f"reading iTop's scheduler ({TABLE})"):
            try:
                task = self.task = backup_task(self.database)
            except DatabaseError as error:
                self.error = str(error)
                return
        if task is None:
            yield nagiosplugin.Metric("backup_task_missing", 1, context="itop_cron")
            return
        now = settings.now.timestamp()
        yield nagiosplugin.Metric("backup_task_enabled", int(self.enabled and task.status == "active"),
                                  context="itop_cron")
        if task.next_run_date is not None:
            lag = max(0, int(now - settings.to_epoch(task.next_run_date)))
            yield nagiosplugin.Metric("cron_lag", lag, uom="s", min=0, context="itop_cron")
        duration = task.latest_run_duration
        if task.running and task.latest_run_date is not None:
            duration = max(0.0, now - settings.to_epoch(task.latest_run_date))
        yield nagiosplugin.Metric("backup_task_duration", round(duration, 3), uom="s", min=0,
                                  context="itop_cron")

    def describe(self) -> str:
        """One line for the long output."""
        if self.error:
            return f"iTop's scheduler: UNKNOWN, {self.error}"
        task = self.task
        if task is None:
            return "iTop's scheduler: no BackupExec task (cron.php has never run)"
        return (f"iTop's scheduler: BackupExec {task.status}, {'running' if task.running else 'idle'}, "
                f"latest run {_when(task.latest_run_date)}, next run {_when(task.next_run_date)}, "
                f"{task.total_exec_count} runs, longest {format_duration(task.max_run_duration)}")


def _when(date) -> str:
    return describe_slot(date) if date is not None else "never"


class SchedulerContext(nagiosplugin.Context):
    """Judges the metrics of ``SchedulerCheck``; perfdata for ``cron_lag`` and ``backup_task_duration``."""

    def __init__(self, settings: CheckSettings) -> None:
        super().__init__("itop_cron", result_cls=Finding)
        self.grace = settings.grace.total_seconds()

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        scheduler = resource.scheduler
        task, grace = scheduler.task, format_duration(self.grace)
        state, hint = Ok, None
        if metric.name == "backup_task_missing" and scheduler.enabled:
            state, hint = Critical, ("iTop's cron.php has never run: priv_backgroundtask has no "
                                     "BackupExec task (cron.php creates it on its first run), so no "
                                     "scheduled backup ran")
        elif metric.name == "backup_task_enabled" and not metric.value:
            why = (f"its BackupExec task is {task.status}" if scheduler.enabled
                   else "'enabled' => false in the itop-backup settings of config-itop.php")
            state, hint = Warn, (f"iTop's scheduled backup is off ({why}) while this check expects "
                                 "its archives")
        elif metric.name == "cron_lag" and metric.value > self.grace and scheduler.enabled \
                and task.status == "active":
            state, hint = Critical, (f"iTop's cron.php has not run since "
                                     f"{describe_slot(task.next_run_date)}: its scheduled backup was due "
                                     f"then, {format_duration(metric.value)} ago (grace {grace})")
        elif metric.name == "backup_task_duration" and task.running \
                and metric.value > task.max_run_duration + self.grace:
            state, hint = Critical, (f"iTop's scheduled backup has been running since "
                                     f"{describe_slot(task.latest_run_date)} (stuck or failed): "
                                     f"{format_duration(metric.value)}, longest run "
                                     f"{format_duration(task.max_run_duration)} + grace {grace}")
        return self.result_cls(state, hint, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: object) -> Performance | None:
        if metric.name not in ("cron_lag", "backup_task_duration"):
            return None
        return Performance(metric.name, metric.value, metric.uom, None, None, 0, None)
