"""``itop-backup run``: dump the iTop database into an archive iTop's own restore accepts.

Settings come from ``--itop-config`` (config-itop.php: database, TLS, timezone and the
``itop-backup`` module settings), then iTop param files (``backup_file``, ``mysql_bindir``),
then options, each overriding the one before. The password comes from
``--db-password-file``, ``$ITOP_BACKUP_DB_PASSWORD``, ``--db-option-file`` or the config,
in that order; it is never accepted on the command line.

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

from check_itop_backup.units import non_negative_int, parse_timeout, port_number, positive_int

if TYPE_CHECKING:
    from check_itop_backup.backup.run import BackupJob

PROG = "itop-backup run"
DEFAULT_TIMEOUT = "12h"


class ConfigError(ValueError):
    """Options or configuration that do not make a backup job."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``itop-backup run``."""
    source = parser.add_argument_group("what to back up")
    source.add_argument("--itop-config", metavar="PATH",
                        help="iTop's conf/<env>/config-itop.php: database settings, module settings "
                             "(mysql_bindir, retention_count, file_name_format, extra_files); archived as is")
    source.add_argument("--itop-root", metavar="DIR",
                        help="the iTop directory, for delta.xml, <env>-modules and extra files "
                             "(default: three levels above --itop-config)")
    source.add_argument("--param-file", metavar="FILES",
                        help="iTop param file(s), comma separated: backup_file, mysql_bindir")
    add_database_arguments(source)
    source.add_argument("--db-subname", metavar="PREFIX", help="overrides db_subname (the table prefix)")
    source.add_argument("--mysql-bindir", metavar="DIR",
                        help="directory of mysqldump or mariadb-dump (default: module setting, else PATH)")
    target = parser.add_argument_group("where and how")
    target.add_argument("-f", "--backup-file", metavar="PATTERN",
                        help="archive name with iTop's placeholders (__DB__, %%Y…); .tar.gz is added "
                             "(default: <itop-root>/data/backups/auto/<file_name_format>)")
    target.add_argument("--retention-count", metavar="N", type=non_negative_int,
                        help="keep the newest N archives of the pattern, delete older ones after "
                             "success; 0 keeps all (default: module setting retention_count, "
                             "5 with --itop-config, else 0)")
    target.add_argument("--compress-level", metavar="1-9", type=int, choices=range(1, 10), default=6,
                        help="gzip level (default: %(default)s)")
    target.add_argument("--jobs", metavar="N", type=positive_int,
                        help="compression threads (default: all cores)")
    target.add_argument("--wait", action="store_true",
                        help="wait for a running backup to the same directory instead of failing")
    target.add_argument("--history", metavar="PATH",
                        help="the SQLite history where the run is recorded (default: "
                             "$CHECK_ITOP_BACKUP_HISTORY or /var/lib/check_itop_backup/history.sqlite)")
    add_timeout_argument(target, "the temporary archive is removed, earlier archives are untouched")
    people = parser.add_argument_group("output")
    people.add_argument("--dry-run", action="store_true",
                        help="print the archive name, the dump command and the members; write nothing")
    people.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    people.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug)")


def add_timeout_argument(group: argparse._ArgumentGroup, cleanup: str) -> None:
    """Declare ``--timeout`` (a duration, default ``DEFAULT_TIMEOUT``); *cleanup* says what a
    timeout leaves behind."""
    group.add_argument("--timeout", metavar="DURATION", type=parse_timeout, default=DEFAULT_TIMEOUT,
                       help=f"give up after this long, e.g. 90m or 12h (exit 1); {cleanup} "
                            "(default: %(default)s)")


def add_database_arguments(group: argparse._ArgumentGroup) -> None:
    """Declare the connection options shared with ``itop-backup restore``: ``--db-host``,
    ``--db-port``, ``--db-user``, ``--db-name`` and the password sources (see ``database_password``)."""
    group.add_argument("--db-host", metavar="HOST[:PORT]", help="overrides db_host")
    group.add_argument("--db-port", metavar="PORT", type=port_number, help="overrides the port of db_host")
    group.add_argument("--db-user", metavar="USER", help="overrides db_user")
    group.add_argument("--db-name", metavar="NAME", help="overrides db_name")
    group.add_argument("--db-password-file", metavar="PATH",
                       help="read the password from the first line of PATH "
                            "(else $ITOP_BACKUP_DB_PASSWORD, --db-option-file, the config, empty)")
    group.add_argument("--db-option-file", metavar="PATH",
                       help="a MySQL option file whose [client] or [mysqldump] password is used")


def run(args: argparse.Namespace) -> int:
    """Run one backup (or describe it with --dry-run); return the exit status."""
    from check_itop_backup import deadline
    from check_itop_backup.backup.run import BackupError, recorded_run, run_backup

    _configure_logging(args)
    try:
        with deadline.armed(args.timeout):  # the whole run, the configuration reading included
            try:
                job = build_job(args)
            except ValueError as error:  # ConfigError, and the readers' own (PhpConfigError, …)
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
    """Resolve config file, param files and options into a BackupJob; raise ConfigError, or the
    ValueError of the reader of an option that cannot be used (a bad port, a non-UTF-8 path)."""
    from check_itop_backup.itop.phpconfig import PhpConfigError

    try:
        return _job(args)
    except PhpConfigError as error:  # a setting of the right name but of the wrong type
        raise ConfigError(f"cannot use iTop config {args.itop_config}: {error}") from None


def _job(args: argparse.Namespace) -> BackupJob:
    from check_itop_backup.backup.run import BackupJob
    from check_itop_backup.itop.instance import DatabaseSettings, split_db_host
    from check_itop_backup.itop.naming import SCHEDULED_FORMAT, NamePattern, host_of
    from check_itop_backup.itop.phpconfig import setting_array, setting_flag, setting_int, setting_text

    settings, module, config_path = _itop_config(args.itop_config)
    params = _param_files(args.param_file)
    root = args.itop_root or _itop_root(config_path)
    db_host = args.db_host or setting_text(settings, "db_host", "localhost")
    host, port = split_db_host(db_host)
    name = args.db_name or setting_text(settings, "db_name")
    if not name:
        raise ConfigError("no database name: give --itop-config or --db-name")
    subname = args.db_subname if args.db_subname is not None else setting_text(settings, "db_subname")
    database = DatabaseSettings(
        host=host, port=args.db_port or port, user=args.db_user or setting_text(settings, "db_user", "root"),
        password=database_password(args, settings), name=name, subname=subname,
        tls=setting_flag(settings, "db_tls.enabled"), tls_ca=setting_text(settings, "db_tls.ca"))
    spec = args.backup_file or params.get("backup_file")
    if not spec:
        if not root:
            raise ConfigError("no archive name: give -f/--backup-file or the --itop-config of an iTop")
        spec = os.path.join(root, "data", "backups", "auto",
                            setting_text(module, "file_name_format", SCHEDULED_FORMAT))
    pattern = NamePattern.from_spec(os.path.abspath(spec), host_of(db_host), name, subname)
    retention = args.retention_count
    if retention is None:
        retention = setting_int(module, "retention_count", 5) if config_path else 0
    extra = setting_array(module, "extra_files")
    return BackupJob(
        pattern=pattern, database=database, config_path=config_path, itop_root=root,
        environment=os.path.basename(os.path.dirname(config_path)) if config_path else "production",
        extra_files=tuple(setting_text(extra, key) for key in extra),
        retention_count=retention,
        mysql_bindir=args.mysql_bindir or params.get("mysql_bindir") or setting_text(module, "mysql_bindir"),
        level=args.compress_level, workers=args.jobs, wait=args.wait,
        timezone=setting_text(settings, "timezone"))


def _itop_config(path: str | None) -> tuple[dict, dict, str]:
    """Return (MySettings, itop-backup module settings, absolute path) of config-itop.php."""
    if not path:
        return {}, {}, ""
    from check_itop_backup.itop.phpconfig import PhpConfigError, load_php_config, setting_array

    try:
        config = load_php_config(path)
    except PhpConfigError as error:
        raise ConfigError(str(error)) from None
    module = setting_array(setting_array(config, "MyModuleSettings"), "itop-backup")
    return setting_array(config, "MySettings"), module, os.path.abspath(path)


def _itop_root(config_path: str) -> str:
    """Return the iTop root of ``<root>/conf/<env>/config-itop.php``, else ''."""
    conf = os.path.dirname(os.path.dirname(config_path)) if config_path else ""
    return os.path.dirname(conf) if os.path.basename(conf) == "conf" else ""


def _param_files(spec: str | None) -> dict[str, str]:
    if not spec:
        return {}
    from check_itop_backup.itop.paramfile import ParamFileError, load_param_files

    try:
        return load_param_files(spec)
    except ParamFileError as error:
        raise ConfigError(str(error)) from None


def database_password(args: argparse.Namespace, settings: dict) -> str:
    """Return the password: ``--db-password-file``, ``$ITOP_BACKUP_DB_PASSWORD``,
    ``--db-option-file``, then *settings* (iTop's ``db_pwd``); raise ConfigError."""
    from check_itop_backup.itop.credentials import (
        PASSWORD_ENV,
        CredentialsError,
        check_password,
        read_option_file_password,
        read_password_file,
    )
    from check_itop_backup.itop.phpconfig import setting_text

    try:
        if args.db_password_file:
            return read_password_file(args.db_password_file)
        if PASSWORD_ENV in os.environ:
            return check_password(os.environ[PASSWORD_ENV])
        from_option_file = read_option_file_password(args.db_option_file) if args.db_option_file else None
        return check_password(setting_text(settings, "db_pwd")) if from_option_file is None \
            else from_option_file
    except CredentialsError as error:
        raise ConfigError(str(error)) from None


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
