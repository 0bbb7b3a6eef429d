"""``--itop-cron`` against the real MariaDB: an iTop-shaped ``priv_backgroundtask`` in each state
iTop's cron.php leaves it (webservices/cron.php, core/backgroundtask.class.inc.php)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pymysql
import pytest

from tests.checkrun import place_archive, run_check

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=PARIS)  # judges the Wednesday 2nd 23:30 backup
# core/backgroundtask.class.inc.php's table, as iTop 3.2's setup creates it (from the sample dump)
TABLE = """CREATE TABLE `priv_backgroundtask` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `class_name` varchar(255) DEFAULT '',
  `first_run_date` datetime DEFAULT NULL,
  `latest_run_date` datetime DEFAULT NULL,
  `next_run_date` datetime DEFAULT NULL,
  `total_exec_count` int(11) DEFAULT 0,
  `latest_run_duration` decimal(8,3) DEFAULT 0.000,
  `min_run_duration` decimal(8,3) DEFAULT 0.000,
  `max_run_duration` decimal(8,3) DEFAULT 0.000,
  `average_run_duration` decimal(8,3) DEFAULT 0.000,
  `running` tinyint(1) DEFAULT 0,
  `status` enum('active','paused','removed') DEFAULT 'active',
  `system_user` varchar(255) DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `class_name` (`class_name`(95))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""


def task(server, database, **row):
    """Put BackupExec's row (and another task's, as cron.php has several) into the table."""
    values = dict(class_name="BackupExec", latest_run_date=None, next_run_date="2026-12-03 23:30:00",
                  running=0, status="active", total_exec_count=0, max_run_duration=0)
    values.update(row)
    with pymysql.connect(**server, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO priv_backgroundtask (class_name, next_run_date) VALUES "
                       "('LogFileRotationProcess', '2026-12-04 00:30:00')")
        cursor.execute(f"INSERT INTO priv_backgroundtask ({', '.join(values)}) VALUES "
                       f"({', '.join(['%s'] * len(values))})", tuple(values.values()))
        connection.commit()


def config(tmp_path, server, database, enabled="true", port=None, user=None):
    path = tmp_path / "itop" / "conf" / "production" / "config-itop.php"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        <?php
        $MySettings = array(
            'db_host' => '{server['host']}:{port or server['port']}',
            'db_name' => '{database}',
            'db_user' => '{user or server['user']}',
            'db_pwd' => '{server['password']}',
            'db_subname' => '',
            'timezone' => 'Europe/Paris',
        );
        $MyModuleSettings = array(
            'itop-backup' => array('enabled' => {enabled}, 'week_days' => 'monday, tuesday, wednesday,
                thursday, friday', 'time' => '23:30'),
        );
        """))
    return path


@pytest.fixture
def itop(tmp_path, mariadb_database):
    """An iTop database with iTop's priv_backgroundtask, and the on-time archive of Wednesday."""
    server, database = mariadb_database
    with pymysql.connect(**server, database=database) as connection, connection.cursor() as cursor:
        cursor.execute(TABLE)
    name = f"{database}-2026-12-02_23_30.tar.gz"
    place_archive(tmp_path / "backups" / name, datetime(2026, 12, 2, 23, 34, tzinfo=PARIS))
    return server, database, name


def check(tmp_path, itop_config, *extra, now=NOW):
    return run_check("--itop-config", itop_config, "-f", tmp_path / "backups" / "__DB__-%Y-%m-%d_%H_%M",
                     "--now", now.isoformat(), "--itop-cron", *extra)


def test_a_task_waiting_for_its_next_slot_is_ok_with_its_perfdata(tmp_path, itop):
    server, database, name = itop
    task(server, database)  # as seen on iTop 3.2 after cron.php's first run

    run = check(tmp_path, config(tmp_path, server, database), "-v")

    assert run.exit_code == 0, run.stdout
    assert run.status_line.startswith(f"ITOP_BACKUP OK - {name}: 10h 26m old")
    assert "backup_task_duration=0.0s;;;0 cron_lag=0s;;;0" in run.perfdata
    assert ("iTop's scheduler: BackupExec active, idle, latest run never, next run Thu 2026-12-03 23:30, "
            "0 runs, longest 0s") in run.long_output


def test_a_next_run_date_past_its_grace_says_cron_php_has_not_run_since_then_in_itops_timezone(
        tmp_path, itop):
    server, database, name = itop
    task(server, database, next_run_date="2026-12-02 23:30:00")  # Paris time: 10h 30m before NOW

    run = check(tmp_path, config(tmp_path, server, database))

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - iTop's cron.php has not run since "
                               "Wed 2026-12-02 23:30: its scheduled backup was due then, 10h 30m ago "
                               "(grace 2h 0m)")
    assert "cron_lag=37800s;;;0" in run.perfdata


def test_a_next_run_date_within_its_grace_is_ok(tmp_path, itop):
    server, database, _ = itop
    task(server, database, next_run_date="2026-12-03 08:30:00")

    run = check(tmp_path, config(tmp_path, server, database))

    assert run.exit_code == 0 and "cron_lag=5400s;;;0" in run.perfdata


def test_a_run_still_flagged_running_past_its_longest_run_and_grace_is_stuck_or_failed(tmp_path, itop):
    server, database, _ = itop
    # a run that threw: running stays 1 while the dates move on (cron.php's RunTask)
    task(server, database, running=1, latest_run_date="2026-12-02 23:31:00", max_run_duration=72.5,
         total_exec_count=12)

    run = check(tmp_path, config(tmp_path, server, database))

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - iTop's scheduled backup has been running since "
                               "Wed 2026-12-02 23:31 (stuck or failed): 10h 29m, longest run 1m 12s "
                               "+ grace 2h 0m")
    assert "backup_task_duration=37740.0s;;;0" in run.perfdata


def test_a_run_under_way_within_its_longest_run_and_grace_is_ok(tmp_path, itop):
    server, database, _ = itop
    task(server, database, running=1, latest_run_date="2026-12-03 09:00:00", max_run_duration=72.5)

    run = check(tmp_path, config(tmp_path, server, database))

    assert run.exit_code == 0 and "backup_task_duration=3600.0s;;;0" in run.perfdata


def test_scheduled_backups_disabled_in_the_config_are_a_warning(tmp_path, itop):
    server, database, _ = itop
    task(server, database, next_run_date="3000-01-01 00:00:00")  # what cron.php plans when disabled

    run = check(tmp_path, config(tmp_path, server, database, enabled="false"))

    assert run.exit_code == 1
    assert run.status_line == ("ITOP_BACKUP WARNING - iTop's scheduled backup is off ('enabled' => false in "
                               "the itop-backup settings of config-itop.php) while this check expects its "
                               "archives")


def test_no_backupexec_row_says_cron_php_has_never_run(tmp_path, itop):
    server, database, _ = itop

    run = check(tmp_path, config(tmp_path, server, database))

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - iTop's cron.php has never run: "
                               "priv_backgroundtask has no BackupExec task (cron.php creates it on its "
                               "first run), so no scheduled backup ran")
    assert "cron_lag" not in run.perfdata


def test_an_unreachable_database_is_unknown_for_the_scheduler_only_and_the_file_verdict_stands(
        tmp_path, itop):
    server, database, name = itop
    unreachable = config(tmp_path, server, database, port=1)

    fine = check(tmp_path, unreachable)
    (tmp_path / "backups" / name).unlink()
    missing = check(tmp_path, unreachable)

    unknown = (f"; iTop's scheduler UNKNOWN: cannot connect to the database server {server['host']}:1 as "
               f"'{server['user']}': Can't connect to MySQL server on '{server['host']}' "
               "([Errno 111] Connection refused)")
    assert fine.exit_code == 0
    assert fine.status_line == (f"ITOP_BACKUP OK - {name}: 10h 26m old, 1.1 MiB, learning size history (0/3)"
                                + unknown)
    assert "cron_lag" not in fine.perfdata
    assert missing.exit_code == 2
    assert missing.status_line.startswith(f"ITOP_BACKUP CRITICAL - no archive {name} or later")
    assert missing.status_line.endswith(unknown)


def test_an_account_with_select_on_that_table_only_is_enough(tmp_path, itop):
    server, database, _ = itop
    task(server, database, next_run_date="2026-12-02 23:30:00")
    user = f"cib_mon_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(**server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY ''")
        cursor.execute(f"GRANT SELECT ON `{database}`.`priv_backgroundtask` TO '{user}'@'%'")
    try:
        run = check(tmp_path, config(tmp_path, server, database, user=user),
                    "--db-password-file", "/dev/null")
    finally:
        with pymysql.connect(**server) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'%'")

    assert run.exit_code == 2
    assert run.status_line.startswith("ITOP_BACKUP CRITICAL - iTop's cron.php has not run since "
                                      "Wed 2026-12-02")


def test_itop_cron_needs_the_database(tmp_path):
    run = run_check("-f", tmp_path / "x-%Y-%m-%d", "--itop-cron")

    assert run.exit_code == 3
    assert run.status_line == ("ITOP_BACKUP UNKNOWN - --itop-cron needs --itop-config or --db-name "
                               "(the iTop database)")


NEW_MODULES = ("pymysql", "check_itop_backup.check.cron", "check_itop_backup.check.tabledrift",
               "check_itop_backup.database.scheduler", "check_itop_backup.archive.portability",
               "check_itop_backup.itop.modules")


def imported_by(tmp_path, *argv) -> list[str]:
    """The NEW_MODULES a fresh interpreter has imported after the probe ran with *argv*."""
    code = ("import sys\n"
            "from check_itop_backup.cli.check import check_main\n"
            "try:\n"
            f"    check_main({[str(arg) for arg in argv]!r})\n"
            "except SystemExit:\n"
            f"    print([name for name in {NEW_MODULES!r} if name in sys.modules])\n")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env={"CHECK_ITOP_BACKUP_HISTORY": str(tmp_path / "history.sqlite"),
                                   "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[2])
    return ast.literal_eval(finished.stdout.splitlines()[-1])


def test_the_stat_level_probe_imports_none_of_it_and_itop_cron_imports_pymysql(tmp_path, itop):
    server, database, _ = itop
    task(server, database)
    itop_config = config(tmp_path, server, database)
    argv = ("--itop-config", itop_config, "-f", tmp_path / "backups" / "__DB__-%Y-%m-%d_%H_%M",
            "--now", NOW.isoformat())

    assert imported_by(tmp_path, *argv) == []
    assert imported_by(tmp_path, *argv, "--itop-cron") == ["pymysql", "check_itop_backup.check.cron",
                                                           "check_itop_backup.database.scheduler"]
