"""iTop's scheduler as its database records it: the ``BackupExec`` row of ``priv_backgroundtask``.

iTop's ``cron.php`` creates one ``BackgroundTask`` row per background process on its first run
(``ReSyncProcesses``, webservices/cron.php) and, for each run of a task, sets ``running`` to 1
and ``latest_run_date`` to the start, runs it, then sets ``running`` back to 0 (only when the
task returned: a task that throws leaves it at 1), the durations, ``latest_run_date`` to the
end and ``next_run_date`` to the next occurrence (``3000-01-01`` when the module is disabled).
Dates are wall-clock times in iTop's timezone (its config's ``timezone``), not UTC. Reading the
row needs only ``SELECT`` on that table.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime

from check_itop_backup.database.server import DatabaseError, connect, quote_name
from check_itop_backup.itop.instance import DatabaseSettings

BACKUP_TASK = "BackupExec"  # datamodels/2.x/itop-backup/main.itop-backup.php
TABLE = "priv_backgroundtask"  # core/backgroundtask.class.inc.php


class BackgroundTask(namedtuple("BackgroundTask", "running status latest_run_date next_run_date "
                                                   "latest_run_duration max_run_duration total_exec_count")):
    """One task's row: ``running`` (bool), ``status`` (active, paused, removed), the dates
    (naive datetimes in iTop's timezone, None when unset) and durations (s)."""

    __slots__ = ()


def backup_task(database: DatabaseSettings) -> BackgroundTask | None:
    """Return the ``BackupExec`` row of the iTop database (None: cron.php has never run);
    raise DatabaseError saying why it cannot be read."""
    import pymysql

    table = quote_name(database.subname + TABLE)
    with connect(database, database.name) as connection, connection.cursor() as cursor:
        try:
            cursor.execute(f"SELECT running, status, latest_run_date, next_run_date, latest_run_duration,"
                           f" max_run_duration, total_exec_count FROM {table} WHERE class_name = %s"
                           f" ORDER BY id DESC LIMIT 1", (BACKUP_TASK,))
            row = cursor.fetchone()
        except pymysql.MySQLError as error:
            raise DatabaseError(f"cannot read {database.name}.{database.subname + TABLE}: "
                                f"{error.args[-1]}") from None
    if row is None:
        return None
    running, status, latest, next_run, duration, longest, count = row
    return BackgroundTask(bool(running), status or "", _date(latest), _date(next_run),
                          float(duration or 0), float(longest or 0), int(count or 0))


def _date(value: object) -> datetime | None:
    """A DATETIME column: PyMySQL gives a datetime, or the text of a zero date."""
    return value if isinstance(value, datetime) else None
