"""``itop-backup run``: dump the iTop database into an archive iTop's own restore accepts.

Settings are the iTop instance's (itop/instance.py, the resolver every command uses):
``--itop-config`` (config-itop.php: database, TLS, timezone and the ``itop-backup`` module
settings), then iTop param files (``backup_file``), then options, each overriding the one
before. The password comes from ``--db-password-file``, ``$ITOP_BACKUP_DB_PASSWORD``,
``--db-option-file`` or the config, in that order; it is never accepted on the command line.

Exit status: 0 archive made, 1 the run failed or ran out of ``--timeout`` (one line on
stderr; earlier archives are untouched), 2 bad options or configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING

from check_itop_backup.cli.options import add_options, add_timeout_option, instance_request, positive_int

if TYPE_CHECKING:
    from check_itop_backup.backup.run import BackupJob

PROG = "itop-backup run"
DEFAULT_TIMEOUT = "12h"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``itop-backup run``."""
    source = parser.add_argument_group("what to back up")
    add_options(source, "itop_config", "itop_root", "param_file", "db_host", "db_port", "db_user", "db_name",
                "db_password_file", "db_option_file", "db_subname", "mysql_bindir", "timezone")
    target = parser.add_argument_group("where and how")
    add_options(target, "backup_file", "retention_count")
    target.add_argument("--compress-level", metavar="1-9", type=int, choices=range(1, 10), default=6,
                        help="gzip level (default: %(default)s)")
    target.add_argument("--jobs", metavar="N", type=positive_int,
                        help="compression threads (default: all cores)")
    target.add_argument("--wait", action="store_true",
                        help="wait for a running backup to the same directory instead of failing")
    target.add_argument("--portable", action="store_true",
                        help="a dump other servers and clients load: without MariaDB's sandbox first "
                             "line (refused by MySQL's client and MariaDB clients before 10.5.25, 10.6.18, "
                             "10.11.8), DEFINER= clauses (SUPER needed) and GTID statements "
                             "(--set-gtid-purged=OFF where mysqldump has it, else filtered from the stream)")
    add_options(target, "history")
    add_timeout_option(target, DEFAULT_TIMEOUT,
                       "exit 1; the temporary archive is removed, earlier archives are untouched")
    people = parser.add_argument_group("output")
    people.add_argument("--dry-run", action="store_true",
                        help="print the archive name, the dump command and the members; write nothing")
    people.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    people.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug)")


def run(args: argparse.Namespace) -> int:
    """Run one backup (or describe it with --dry-run); return the exit status."""
    from check_itop_backup import deadline
    from check_itop_backup.backup.run import BackupError, recorded_run, run_backup

    _configure_logging(args)
    try:
        with deadline.armed(args.timeout):  # the whole run, the configuration reading included
            try:
                job = build_job(args)
            except ValueError as error:  # ConfigError
                print(f"{PROG}: {error}", file=sys.stderr)
                return 2
            if args.dry_run:
                _print_plan(run_backup(job, dry_run=True).plan)
                return 0
            with recorded_run(_history_path(args), job.pattern.pattern) as results:
                results.append(run_backup(job, _progress_line(args)))
    except (BackupError, deadline.StageTimeoutError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    _report(args, results[0])
    return 0


def build_job(args: argparse.Namespace) -> BackupJob:
    """Resolve the options, param files and config into a BackupJob; raise ConfigError."""
    from check_itop_backup.backup.run import BackupJob
    from check_itop_backup.itop.instance import ConfigError, resolve_instance
    from check_itop_backup.itop.phpconfig import PhpConfigError, setting_array, setting_text

    instance = resolve_instance(instance_request(args))
    if not instance.database.name:
        raise ConfigError("no database name: give --itop-config or --db-name")
    try:
        extra = setting_array(instance.module, "extra_files")
        extra_files = tuple(setting_text(extra, key) for key in extra)
    except PhpConfigError as error:
        raise ConfigError(f"cannot use iTop config {args.itop_config}: {error}") from None
    return BackupJob(
        pattern=instance.pattern, database=instance.database, config_path=instance.config_path,
        itop_root=instance.root, environment=instance.environment, extra_files=extra_files,
        retention_count=instance.retention_count or 0, mysql_bindir=instance.mysql_bindir,
        level=args.compress_level, workers=args.jobs, wait=args.wait,
        timezone=instance.timezone, portable=args.portable)


def _history_path(args: argparse.Namespace) -> str:
    from check_itop_backup.history import DEFAULT_PATH, ENV_VAR

    return args.history or os.environ.get(ENV_VAR) or DEFAULT_PATH


def _configure_logging(args: argparse.Namespace) -> None:
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if args.quiet else levels[min(args.verbose, 2)]
    logger = logging.getLogger("check_itop_backup")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)


def _progress_line(args: argparse.Namespace):
    """Return a progress callback drawing one line on a terminal, or None (cron, --quiet)."""
    if args.quiet or not sys.stderr.isatty():
        return None
    from check_itop_backup.units import format_duration, format_size

    started, last = time.monotonic(), [0.0]

    def draw(dumped: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            elapsed = max(now - started, 1e-6)
            sys.stderr.write(f"\rdumped {format_size(dumped)} at {format_size(dumped / elapsed)}/s, "
                             f"{format_duration(elapsed)} elapsed   ")
            sys.stderr.flush()

    return draw


def _report(args: argparse.Namespace, result) -> None:
    from check_itop_backup.units import format_duration, format_size

    if args.quiet or not (args.verbose or sys.stderr.isatty()):
        return
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    deleted = f", {len(result.deleted)} old archive(s) deleted" if result.deleted else ""
    print(f"created {result.archive} ({format_size(result.size)}, dump {format_size(result.dump_size)}) "
          f"in {format_duration(result.seconds)}{deleted}")


def _print_plan(planned) -> None:
    print(f"archive: {planned.archive}")
    print("command: " + " ".join(planned.command) + "   (password passed through a pipe, not shown)")
    print(f"server:  {planned.facts.version}, {len(planned.facts.tables)} tables/views")
    print("members:")
    for name in planned.members:
        print(f"  {name}")
