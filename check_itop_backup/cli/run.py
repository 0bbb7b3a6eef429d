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

from check_itop_backup.archive.codec import DEFAULT_LEVEL
from check_itop_backup.cli.options import (
    add_options,
    add_timeout_option,
    configure_logging,
    instance_label,
    instance_request,
    non_negative_int,
    offsite_url,
    parse_timeout,
    positive_int,
    store_settings,
)

if TYPE_CHECKING:
    from check_itop_backup.backup.offsite import OffsiteJob
    from check_itop_backup.backup.ping import LogTail, Pinger
    from check_itop_backup.backup.run import BackupJob
    from check_itop_backup.itop.instance import ItopInstance

PROG = "itop-backup run"
DEFAULT_TIMEOUT = "12h"
DEFAULT_PING_TIMEOUT = "10"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``itop-backup run``."""
    source = parser.add_argument_group("what to back up")
    add_options(source, "itop_config", "itop_root", "param_file", "db_host", "db_port", "db_user", "db_name",
                "db_password_file", "db_option_file", "db_subname", "mysql_bindir", "timezone")
    target = parser.add_argument_group("where and how")
    add_options(target, "backup_file", "retention_count")
    target.add_argument("--compress-level", metavar="0-9", type=int, choices=range(10), default=DEFAULT_LEVEL,
                        help="gzip level: 0 stores, 1-3 are ISA-L's fast levels, 4-9 zlib-ng's dense ones "
                             "(default: %(default)s, fast enough to keep up with mysqldump)")
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
    offsite = parser.add_argument_group(
        "copies in object storage",
        "After each successful run the archive is uploaded (and the copies earlier runs could not "
        "make); a failed upload keeps the local archive and exits 1.")
    add_options(offsite, "offsite", "s3_endpoint_url", "s3_profile")
    offsite.add_argument("--offsite-retention-count", metavar="N", type=non_negative_int,
                         help="copies kept in the store after a successful upload, the newest never "
                              "deleted (default: --retention-count; 0 keeps all)")
    offsite.add_argument("--offsite-encrypt-to", metavar="RECIPIENT", action="append", default=[],
                         help="encrypt the copy to this age (age1…) or SSH public key; repeat for more "
                              "recipients (the local archive stays as it is)")
    offsite.add_argument("--offsite-lock-days", metavar="N", type=non_negative_int, default=0,
                         help="S3 Object Lock retention of each copy, in days (the bucket must have "
                              "Object Lock enabled; default: none)")
    offsite.add_argument("--offsite-lock-mode", choices=("governance", "compliance"), default="governance",
                         help="Object Lock mode (default: %(default)s)")
    watch = parser.add_argument_group("monitoring")
    watch.add_argument("--ping-url", metavar="URL",
                       help="ping this dead-man's-switch URL when the run starts and ends (Healthchecks; "
                            "Uptime Kuma push and Cronitor URLs are recognised); a failed ping is one "
                            "warning and never changes the exit status (default: $ITOP_BACKUP_PING_URL, "
                            "else ping_url of --param-file)")
    watch.add_argument("--ping-timeout", metavar="DURATION", type=parse_timeout, default=DEFAULT_PING_TIMEOUT,
                       help="give up one ping attempt after this long, e.g. 10 or 1m; a ping is tried at "
                            "most 3 times (default: %(default)s)")
    watch.add_argument("--prometheus-textfile", metavar="PATH",
                       help="after every run, good or failed, write the runner's Prometheus metrics to "
                            "PATH atomically (node_exporter's textfile collector; PATH ends in .prom)")
    add_options(watch, "instance")
    people = parser.add_argument_group("output")
    people.add_argument("--dry-run", action="store_true",
                        help="print the archive name, the dump command and the members; write nothing")
    people.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    people.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug)")


def run(args: argparse.Namespace) -> int:
    """Run one backup (or describe it with --dry-run); return the exit status.

    With a ping URL the service hears of the start and of the end, good or failed (the
    configuration's own errors included, when the URL is known without it); with
    ``--prometheus-textfile`` the metrics are written after every run that got a job.
    """
    from check_itop_backup import deadline
    from check_itop_backup.backup.run import BackupError, recorded_run, run_backup
    from check_itop_backup.itop.instance import resolve_instance

    tail = _configure_logging(args)
    job, ping, bad_configuration, copied, not_copied = None, None, None, None, None
    try:
        with deadline.armed(args.timeout):  # the whole run, the configuration reading included
            try:
                instance = resolve_instance(instance_request(args))
                job = build_job(args, instance)
                offsite = build_offsite_job(args, instance)
                ping = _pinger(args, instance.params)
            except ValueError as error:  # ConfigError, a bad ping URL
                bad_configuration, job = f"{PROG}: {error}", None
            else:
                if args.dry_run:
                    _print_plan(run_backup(job, dry_run=True).plan)
                    return 0
                if ping:
                    ping.start()
                with recorded_run(_history_path(args), job.pattern.pattern) as results:
                    results.append(run_backup(job, _progress_line(args)))
                if offsite is not None:
                    copied, not_copied = _copy_offsite(args, job, offsite, results[0].archive)
    except (BackupError, deadline.StageTimeoutError) as error:
        return _ended(args, job, ping, tail, 1, f"{PROG}: {error}")
    except BaseException as error:  # Ctrl-C, a bug: the service hears of it, backup_main says it
        _ended(args, job, ping, tail, 1, f"{PROG}: {type(error).__name__}: {error}", show=False)
        raise
    if bad_configuration is not None:  # pinged when the URL is known without the configuration
        return _ended(args, None, ping or _pinger_or_none(args), tail, 2, bad_configuration)
    report = _report(args, results[0])
    if not_copied is not None:  # the archive is made and kept; its copy is pending
        return _ended(args, job, ping, tail, 1, not_copied)
    if copied is not None:
        _report_copies(args, copied)
    return _ended(args, job, ping, tail, 0, report)


def build_offsite_job(args: argparse.Namespace, instance: ItopInstance) -> OffsiteJob | None:
    """The OffsiteJob of the offsite options and param files (None without ``--offsite``)."""
    from check_itop_backup.itop.instance import ConfigError

    try:
        url = offsite_url(args, instance.params)
    except ValueError as error:
        raise ConfigError(f"--offsite: {error}") from None
    if url is None:
        if args.offsite_encrypt_to or args.offsite_lock_days or args.offsite_retention_count is not None:
            raise ConfigError("the --offsite-* options need --offsite s3://BUCKET/PREFIX")
        return None
    from check_itop_backup.backup.offsite import OffsiteJob
    from check_itop_backup.offsite.location import Location
    from check_itop_backup.offsite.upload import recipients_from

    try:
        recipients_from(tuple(args.offsite_encrypt_to))
    except ValueError as error:
        raise ConfigError(f"--offsite-encrypt-to: {error}") from None
    count = args.offsite_retention_count
    return OffsiteJob(Location.parse(url), store_settings(args),
                      retention_count=(instance.retention_count or 0) if count is None else count,
                      recipients=tuple(args.offsite_encrypt_to), lock_days=args.offsite_lock_days,
                      lock_mode=args.offsite_lock_mode)


def _copy_offsite(args: argparse.Namespace, job: BackupJob, offsite: OffsiteJob, archive: str):
    """Copy the run's archive (and pending ones): (the OffsiteResult, None), or (None, the line
    saying why not)."""
    from check_itop_backup.backup.offsite import OffsiteCopyError, copy_offsite

    try:
        return copy_offsite(offsite, job.pattern, archive, _history_path(args)), None
    except OffsiteCopyError as error:
        return None, f"{PROG}: {error}"


def _report_copies(args: argparse.Namespace, copied) -> None:
    if args.quiet or not (args.verbose or sys.stderr.isatty()):
        return
    for path, url in copied.copied:
        print(f"copied {os.path.basename(path)} to {url}")
    if copied.deleted:
        print(f"offsite retention: {len(copied.deleted)} old copy(ies) deleted")


def _ended(args: argparse.Namespace, job: BackupJob | None, ping: Pinger | None, tail: LogTail | None,
           status: int, line: str, show: bool = True) -> int:
    """Finish a run that ended with *status* and *line* (its error, or its report): print the
    error, write the textfile, send the last ping; return *status*."""
    if status and show:
        print(line, file=sys.stderr)
    if args.prometheus_textfile and job is not None:
        _write_textfile(args, job)
    if ping is not None:
        tail.add(line)
        ping.finish(status, tail.text())
        if ping.warning():
            logging.getLogger("check_itop_backup").warning("%s", ping.warning())
    return status


def _pinger(args: argparse.Namespace, params: dict[str, str]) -> Pinger | None:
    """The run's Pinger: ``--ping-url``, else ``$ITOP_BACKUP_PING_URL``, else the param file's
    ``ping_url``; None without any. Raise ValueError for a URL that is not http(s)."""
    from check_itop_backup.backup.ping import ENV_VAR, PARAM_KEY, Pinger

    url = args.ping_url or os.environ.get(ENV_VAR) or params.get(PARAM_KEY)
    return Pinger(url, args.ping_timeout) if url else None


def _pinger_or_none(args: argparse.Namespace) -> Pinger | None:
    """The Pinger of the option or the environment when the configuration could not be read."""
    try:
        return _pinger(args, {})
    except ValueError:
        return None


def _write_textfile(args: argparse.Namespace, job: BackupJob) -> None:
    """Write the runner's Prometheus families, read from the history; a failure is a warning."""
    from check_itop_backup.history import History, HistoryError

    series = job.pattern.pattern
    try:
        from check_itop_backup.cli.prometheus import run_families, write_textfile

        history = History.open(_history_path(args))
        try:
            families = run_families(instance_label(args, job.database.name), history.run_counts(series),
                                    history.last_run(series), history.last_run(series, "ok"))
        finally:
            history.close()
        write_textfile(args.prometheus_textfile, families)
    except (HistoryError, OSError) as error:
        logging.getLogger("check_itop_backup").warning(
            "the Prometheus textfile %s is not written: %s", args.prometheus_textfile,
            getattr(error, "strerror", None) or error)


def build_job(args: argparse.Namespace, instance: ItopInstance) -> BackupJob:
    """Turn the options and the resolved *instance* into a BackupJob; raise ConfigError."""
    from check_itop_backup.backup.run import BackupJob
    from check_itop_backup.itop.instance import ConfigError
    from check_itop_backup.itop.phpconfig import PhpConfigError, setting_array, setting_text

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


def _configure_logging(args: argparse.Namespace) -> LogTail | None:
    """Log to stderr at the level -q/-v ask; with a possible ping, also keep the log's tail (from
    INFO, whatever the level shown) for the ping's body, and return it."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if args.quiet else levels[min(args.verbose, 2)]
    configure_logging(PROG, level)
    if args.dry_run:
        return None
    from check_itop_backup.backup.ping import LogTail

    tail = LogTail()
    logger = logging.getLogger("check_itop_backup")
    logger.addHandler(tail)
    logger.setLevel(min(level, logging.INFO))
    return tail


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


def _report(args: argparse.Namespace, result) -> str:
    """The line saying what the run made; printed with -v or on a terminal, never with -q."""
    from check_itop_backup.units import format_duration, format_size

    deleted = f", {len(result.deleted)} old archive(s) deleted" if result.deleted else ""
    line = (f"created {result.archive} ({format_size(result.size)}, dump {format_size(result.dump_size)}) "
            f"in {format_duration(result.seconds)}{deleted}")
    if args.quiet or not (args.verbose or sys.stderr.isatty()):
        return line
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(line)
    return line


def _print_plan(planned) -> None:
    print(f"archive: {planned.archive}")
    print("command: " + " ".join(planned.command) + "   (password passed through a pipe, not shown)")
    print(f"server:  {planned.facts.version}, {len(planned.facts.tables)} tables/views")
    print("members:")
    for name in planned.members:
        print(f"  {name}")
