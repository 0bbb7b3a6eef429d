"""``itop-backup verify ARCHIVE``: the probe's deep verification, run by hand.

Prints a report for people on stdout; exit 0 only when the archive verified OK, 1 when it
did not (or could not be read), with the reason as one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from check_itop_backup.archive.inspect import VerificationReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``ARCHIVE``, ``--level`` and ``--verbose``."""
    parser.add_argument("archive", metavar="ARCHIVE",
                        help="the .tar.gz or .zip archive to verify, or a .tar.gz copy s3://BUCKET/KEY "
                             "(streamed, never written to disk)")
    parser.add_argument("--level", choices=("archive", "dump", "restore"), default="dump",
                        help="archive: gzip stream, tar headers, required and safe members; "
                             "dump: also the dump's completion trailer, tables and config-itop.php; "
                             "restore: also a test restore into a scratch database (dropped "
                             "afterwards) on the server of the --db-* options, compared with the "
                             "manifest or the dump's statements (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list every member and table; say which inflater read the archive "
                             "when ISA-L cannot be imported")
    parser.add_argument("--portable", action="store_true",
                        help="also say what keeps the dump from loading into another server or client "
                             "(MariaDB's sandbox line, DEFINER=, GTID statements, not utf8mb4)")
    from check_itop_backup.cli.restore import add_server_arguments, add_source_arguments

    add_source_arguments(parser)
    add_server_arguments(parser.add_argument_group("test restore (--level restore)"))


def format_report(report: VerificationReport, verbose: bool = False, portable: bool = False) -> str:
    """Return the human-readable report of a ``VerificationReport``."""
    from check_itop_backup.archive.layout import DUMP_MEMBER
    from check_itop_backup.units import format_size

    lines = [f"{report.path}: {report.state.upper()} at {report.reached} level "
             f"({report.level} level asked)", f"  {report.reason}"]
    lines += [f"  warning: {warning}" for warning in report.warnings[1:] if report.state == "warning"]
    container = report.container
    if report.container == "tar.gz":
        container += f", {report.gzip_members} gzip member{'s' * (report.gzip_members != 1)}"
    lines.append(f"  container: {container}; {report.member_count} members")
    if report.dump_size is not None:
        lines.append(f"  {DUMP_MEMBER}: {format_size(report.dump_size)}"
                     + (f", sha256 {report.dump_sha256}" if report.dump_sha256 else ""))
    if report.tables:
        lines.append(f"  tables: {report.table_count}")
    if portable and report.reached == "dump":  # the lint reads the dump
        lines += [f"  not portable: {sentence}" for _, sentence in report.portability] or [
            "  portable: no sandbox line, DEFINER=, GTID statement or other character set than utf8mb4"]
    if report.installation is not None:
        lines.append(f"  taken from {report.installation.describe(len(report.installation.modules))}")
    if verbose:
        lines += [f"    member {member.name} ({format_size(member.size)})" for member in report.members]
        lines += _more(report.member_count - len(report.members), "members")
        stats = {name: (rows, size) for name, rows, size in report.table_stats}
        lines += [f"    table {table}" + _counts(*stats.get(table, (None, None))) for table in report.tables]
        lines += _more(report.table_count - len(report.tables), "tables")
    lines.append(f"  verified in {report.seconds:.2f} s")
    return "\n".join(lines)


def _counts(rows: int | None, size: int | None) -> str:
    """``: 42 rows, 1.2 KiB`` of a table's counts, what is known of them."""
    from check_itop_backup.units import format_size

    known = ([f"{rows} rows"] if rows is not None else []) + ([format_size(size)] if size is not None else [])
    return f": {', '.join(known)}" if known else ""


def _more(count: int, what: str) -> list[str]:
    return [f"    and {count} more {what}, not listed"] if count > 0 else []


def run(args: argparse.Namespace) -> int:
    """Verify ``args.archive`` at ``args.level``; print the report; return the exit status."""
    from check_itop_backup.archive.inspect import verify_archive
    from check_itop_backup.cli.options import configure_logging
    from check_itop_backup.cli.progress import ArchiveProgress
    from check_itop_backup.cli.restore import archive_source, run_test_restore

    if args.verbose:
        configure_logging("itop-backup verify", logging.INFO)
    try:
        if args.level == "restore":
            return run_test_restore(args, report_outcome)
        source = archive_source(args, "itop-backup verify")
        if source is None:
            return 1
        with ArchiveProgress(args.archive, "verifying"):
            report = verify_archive(source, args.level)
    except OSError as error:
        print(f"itop-backup verify: cannot read {args.archive}: {error.strerror or error}", file=sys.stderr)
        return 1
    return report_outcome(report, args.verbose, args.portable)


def report_outcome(report: VerificationReport, verbose: bool, portable: bool = False) -> int:
    """Print the report, and the failure on stderr; return the exit status (0 only when OK)."""
    print(format_report(report, verbose, portable))
    if not report.ok:
        print(f"itop-backup verify: {report.state.upper()}: {report.reason}", file=sys.stderr)
        return 1
    return 0
