"""``itop-backup restore ARCHIVE --db-name NAME``: restore an archive, verified first.

The connection options and password sources are the runner's (cli/options.py), resolved with
``--itop-config`` and ``--param-file`` when given (itop/instance.py; options win): the password
comes from ``--db-password-file``, ``$ITOP_BACKUP_DB_PASSWORD``, ``--db-option-file`` or the
config, never from the command line. SIGTERM and ``--timeout`` stop the restore cleanly: the
scratch database, the staged files and the maintenance file are removed, the target is
left as it was.

Exit status: 0 restored, 1 refused or failed (one line on stderr; the target is unchanged
unless the line says otherwise), 2 bad options.
"""

from __future__ import annotations

import argparse
import logging
import sys

PROG = "itop-backup restore"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``itop-backup restore``."""
    parser.add_argument("archive", metavar="ARCHIVE",
                        help="the .tar.gz archive to restore, or its copy s3://BUCKET/KEY (streamed)")
    add_source_arguments(parser)
    database = parser.add_argument_group("target database")
    add_server_arguments(database)
    database.add_argument("--force", action="store_true",
                          help="replace the tables of a target database that has tables (the dump's "
                               "tables are swapped in atomically; others are left as they are), and "
                               "restore with --itop-root onto code of another iTop or module version "
                               "than the archive was taken from (refused otherwise, naming them)")
    database.add_argument("--keep-previous-in", metavar="DIR",
                          help="when the account may not create a scratch database, the restore loads "
                               "into the target itself, after saving its content as an archive in DIR "
                               "(default: the archive's directory), put back if the load fails")
    files = parser.add_argument_group("iTop files")
    files.add_argument("--itop-root", metavar="DIR",
                       help="also restore config-itop.php (0440), delta.xml, <env>-modules/ and extra "
                            "files into this iTop directory, in maintenance mode meanwhile; the "
                            "archive's iTop and module versions (its priv_module_install rows) must be "
                            "those of the code there (core/config.class.inc.php, module.*.php)")
    files.add_argument("--environment", metavar="ENV",
                       help="the iTop environment of the files (default: <env> of --itop-config in "
                            "conf/<env>/, else production)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say which inflater read the archive when ISA-L cannot be imported")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of an ARCHIVE in object storage (restore and verify)."""
    from check_itop_backup.cli.options import add_options

    group = parser.add_argument_group("an archive in object storage (s3://BUCKET/KEY)")
    add_options(group, "s3_endpoint_url", "s3_profile")
    group.add_argument("--identity", metavar="FILE",
                       help="the age identity (age-keygen's file, or an SSH private key) that decrypts "
                            "an encrypted copy (.age)")


def archive_source(args: argparse.Namespace, prog: str):
    """``args.archive``, or for ``s3://…`` the copy in the store (offsite/download.py) read as a
    stream; None after printing why it cannot be read."""
    from check_itop_backup.offsite.location import is_remote

    if not is_remote(args.archive):
        return args.archive
    from check_itop_backup.cli.options import store_settings
    from check_itop_backup.offsite import require_modules

    try:
        require_modules()
    except ValueError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return None
    from check_itop_backup.offsite.download import RemoteArchive, identities_from
    from check_itop_backup.offsite.store import OffsiteError, Store

    try:
        identities = identities_from(args.identity) if args.identity else ()
        return RemoteArchive(Store(store_settings(args)), args.archive, identities)
    except OSError as error:
        print(f"{prog}: cannot read {args.identity}: {error.strerror}", file=sys.stderr)
    except (OffsiteError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
    return None


def add_server_arguments(group: argparse._ArgumentGroup) -> None:
    """Declare the server options shared by restore and ``verify --level restore``: the iTop
    config and param files, the connection options, ``--mysql-bindir`` and ``--timeout``."""
    from check_itop_backup.cli.options import add_options, add_timeout_option
    from check_itop_backup.cli.run import DEFAULT_TIMEOUT

    add_options(group, "itop_config", "param_file", "db_host", "db_port", "db_user", "db_name",
                "db_password_file", "db_option_file", "mysql_bindir")
    add_timeout_option(group, DEFAULT_TIMEOUT,
                       "exit 1; the scratch database is dropped and the target left as it was")


def run(args: argparse.Namespace) -> int:
    """Restore ``args.archive``; print what was done; return the exit status."""
    from check_itop_backup.backup.restore import RestoreError, restore_archive
    from check_itop_backup.cli.options import configure_logging
    from check_itop_backup.cli.progress import ArchiveProgress

    if args.verbose:
        configure_logging(PROG, logging.INFO)
    instance = usable_instance(args, PROG)
    if instance is None:
        return 2
    settings = instance.database
    source = archive_source(args, PROG)
    if source is None:
        return 1
    with guarded_run(args.timeout) as failure:
        try:
            with ArchiveProgress(args.archive, "restoring"):
                result = restore_archive(source, settings, force=args.force,
                                         itop_root=args.itop_root or "", environment=instance.environment,
                                         bindir=instance.mysql_bindir, keep_dir=args.keep_previous_in or "")
        except OSError as error:
            failure.append(f"cannot read {args.archive}: {error.strerror or error}")
        except RestoreError as error:
            failure.append(str(error))
    if failure:
        print(f"{PROG}: {failure[0]}", file=sys.stderr)
        return 1
    _report(result)
    return 0


def run_test_restore(args: argparse.Namespace, report_outcome) -> int:
    """``itop-backup verify ARCHIVE --level restore``: *report_outcome(report, verbose)* prints the
    report and returns the exit status (0 only when the archive restored as expected).
    OSError passes through."""
    from check_itop_backup.cli.progress import ArchiveProgress
    from check_itop_backup.database.recovery import recover
    from check_itop_backup.database.server import DatabaseError
    from check_itop_backup.database.testrestore import verify_by_restore

    prog = "itop-backup verify"
    instance = usable_instance(args, prog, need_name=False)
    if instance is None:
        return 2
    settings = instance.database
    source = archive_source(args, prog)
    if source is None:
        return 1
    with guarded_run(args.timeout) as failure:
        try:
            cleaned, not_cleaned = recover(settings)
            for line in cleaned + not_cleaned:
                print(f"{prog}: warning: {line}", file=sys.stderr)
            with ArchiveProgress(args.archive, "test-restoring"):
                report = verify_by_restore(source, settings, instance.mysql_bindir)
        except DatabaseError as error:
            failure.append(f"test restore impossible: {error}")
    if failure:
        print(f"{prog}: {failure[0]}", file=sys.stderr)
        return 1
    return report_outcome(report, args.verbose)


def usable_instance(args: argparse.Namespace, prog: str, need_name: bool = True):
    """Return the ItopInstance of the options (its database is the target), or None after
    printing why it cannot be used."""
    from check_itop_backup.cli.options import instance_request
    from check_itop_backup.itop.instance import ConfigError, resolve_instance

    try:
        # --itop-root names where files are restored to, never where the instance's settings come from
        instance = resolve_instance(instance_request(args, itop_root=None, need_pattern=False))
        if need_name and not instance.database.name:
            raise ConfigError("give the target database with --db-name")
    except ValueError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return None
    return instance


class guarded_run:  # noqa: N801 - used as a context manager, like contextlib's
    """Arm the deadline (``--timeout``, and SIGTERM) for the block; a StageTimeoutError becomes
    the failure line. Yields the list the block appends its failure line to."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.failure: list[str] = []

    def __enter__(self) -> list[str]:
        from check_itop_backup import deadline

        deadline.current = deadline.Deadline(self.seconds).start()
        return self.failure

    def __exit__(self, kind, error, traceback) -> bool:
        from check_itop_backup import deadline

        deadline.current.cancel()
        if isinstance(error, deadline.StageTimeoutError):
            self.failure.append(str(error))
            return True
        return False


def _report(result) -> None:
    from check_itop_backup.archive.extract import REMINDER
    from check_itop_backup.units import format_size

    swap = result.swap
    print(result.path)
    replaced = f"; {len(swap.replaced)} replaced" if swap.replaced else ""
    print(f"restored {result.archive} into {result.database}: {len(swap.tables)} tables, "
          f"{len(swap.views)} views, {len(swap.triggers)} triggers, dump "
          f"{format_size(result.load.dump_size)} loaded in {result.load.seconds:.1f} s{replaced}")
    for path in result.files:
        print(f"  wrote {path}")
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if result.files:
        print(REMINDER)
