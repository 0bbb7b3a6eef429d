"""Every option shared by the commands, declared once with one meaning and one help text.

``add_options(group, "backup_file", "itop_config", …)`` adds the named options of ``OPTIONS``
to an argparse group; ``instance_request(args)`` turns the parsed options into the
``InstanceRequest`` of itop/instance.py, the one resolver every command uses. The probe's
ticket and verification groups and the argparse wrappers of units.py's parsers live here too:
argparse is only used under cli/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from check_itop_backup import units
from check_itop_backup.check.verification import LEVELS
from check_itop_backup.history import DEFAULT_PATH as DEFAULT_HISTORY
from check_itop_backup.history import ENV_VAR as HISTORY_ENV
from check_itop_backup.itop.instance import REQUEST_FIELDS, InstanceRequest
from check_itop_backup.tickets.settings import DEFAULT_UPDATE_EVERY
from check_itop_backup.tickets.settings import PASSWORD_ENV as TICKET_PASSWORD_ENV


def argument_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """*parse* for argparse: its ValueError message becomes the reason of a bad argument."""

    def parse_argument(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = parse.__name__
    return parse_argument


DEFAULT_RESTORE_EVERY = "7d"  # --restore-every

positive_int = argument_type(units.positive_int)
percent = argument_type(units.parse_percent)
non_negative_int = argument_type(units.non_negative_int)
parse_timeout = argument_type(units.parse_timeout)
parse_duration = argument_type(units.parse_duration)
port_number = argument_type(units.port_number)

OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "backup_file": (("-f", "--backup-file"), dict(
        metavar="PATTERN",
        help="archive name pattern as in iTop: strftime codes and __HOST__, __DB__, __SUBNAME__; "
             ".tar.gz is added unless the name ends with an archive extension (default: from "
             "--param-file, else iTop's scheduled <itop-root>/data/backups/auto/<file_name_format>, "
             "__DB__-%%Y-%%m-%%d_%%H_%%M unless the config sets it)")),
    "param_file": (("--param-file",), dict(
        metavar="FILE[,FILE]",
        help="iTop param file(s), comma separated (backup.params format: backup_file, check_size_min, "
             "…); the command line wins; mysql_bindir there is ignored, as iTop ignores paths")),
    "itop_config": (("--itop-config",), dict(
        metavar="PATH",
        help="iTop's conf/<env>/config-itop.php, read without PHP: database settings, timezone and the "
             "itop-backup module settings (schedule, mysql_bindir, retention_count, file_name_format, "
             "extra_files); a backup archives it as is")),
    "itop_root": (("--itop-root",), dict(
        metavar="DIR",
        help="the iTop directory: the default archive pattern, delta.xml, <env>-modules and extra "
             "files (default: three levels above --itop-config)")),
    "db_host": (("--db-host",), dict(
        metavar="HOST[:PORT]",
        help="overrides db_host (default: the config's, else localhost); also the value of __HOST__, "
             "port removed (empty without a db_host)")),
    "db_port": (("--db-port",), dict(metavar="PORT", type=port_number,
                                     help="overrides the port of db_host")),
    "db_user": (("--db-user",), dict(metavar="USER", help="overrides db_user (default: root)")),
    "db_name": (("--db-name",), dict(
        metavar="NAME", help="overrides db_name, the value of __DB__ (default: from --itop-config)")),
    "db_subname": (("--db-subname",), dict(
        metavar="PREFIX", help="overrides db_subname, the table prefix and the value of __SUBNAME__")),
    "db_password_file": (("--db-password-file",), dict(
        metavar="PATH", help="read the database password from the first line of PATH (else "
                             "$ITOP_BACKUP_DB_PASSWORD, --db-option-file, the config, empty)")),
    "db_option_file": (("--db-option-file",), dict(
        metavar="PATH", help="a MySQL option file whose [client] or [mysqldump] password is used")),
    "mysql_bindir": (("--mysql-bindir",), dict(
        metavar="DIR", help="directory of the mysql client programs (mysqldump, mariadb…) (default: "
                            "the config's itop-backup mysql_bindir, else PATH)")),
    "timezone": (("--timezone",), dict(
        metavar="ZONE", help="iTop's timezone, in which names and the schedule are computed "
                             "(default: the config's timezone, else local time)")),
    "retention_count": (("--retention-count",), dict(
        metavar="N", type=non_negative_int,
        help="archives kept by iTop's retention (default: the config's retention_count, 5 with "
             "--itop-config, else none; 0: keep all): a backup deletes older ones of the pattern "
             "after success, the check warns when fewer are found")),
    "offsite": (("--offsite",), dict(
        metavar="s3://BUCKET/PREFIX",
        help="copies in S3-compatible object storage, under this prefix (also 'offsite' in a param "
             "file); credentials, region and profile the boto3 way: AWS_* variables, ~/.aws/config "
             "and credentials, never a command line")),
    "s3_endpoint_url": (("--s3-endpoint-url",), dict(
        metavar="URL", help="the store's endpoint for MinIO, SeaweedFS, Ceph RGW… (default: "
                            "$AWS_ENDPOINT_URL, else AWS)")),
    "s3_profile": (("--s3-profile",), dict(
        metavar="NAME", help="the profile of the AWS config files (default: $AWS_PROFILE, else default)")),
    "instance": (("--instance",), dict(
        metavar="NAME", help="the instance's name in the Prometheus label itop_instance and the Checkmk "
                             "service names (default: the database name, __DB__)")),
    "history": (("--history",), dict(
        metavar="PATH", help=f"the SQLite history of archives, runs and verdicts (default: "
                             f"${HISTORY_ENV}, else {DEFAULT_HISTORY})")),
}


def configure_logging(prog: str, level: int) -> None:
    """Send the package's log lines of *level* and above to stderr, each as ``PROG: LEVEL: message``."""
    logger = logging.getLogger("check_itop_backup")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s: %(message)s"))
    handler.setLevel(level)  # should the logger take lower levels for another handler
    logger.handlers[:] = [handler]
    logger.setLevel(level)


def add_options(group: argparse._ArgumentGroup, *names: str) -> None:
    """Add the options *names* (keys of OPTIONS) to *group*."""
    for name in names:
        flags, keywords = OPTIONS[name]
        group.add_argument(*flags, **keywords)


def instance_label(args: argparse.Namespace, database_name: str | None = None) -> str:
    """The instance's name for Prometheus and Checkmk: ``--instance``, else the database name."""
    return getattr(args, "instance", None) or database_name or getattr(args, "db_name", None) or "itop"


def add_timeout_option(group: argparse._ArgumentGroup, default: str, outcome: str,
                       short: bool = False) -> None:
    """Declare ``--timeout`` (``-t`` too with *short*): a duration; *outcome* says what then happens."""
    flags = ("-t", "--timeout") if short else ("--timeout",)
    group.add_argument(*flags, metavar="DURATION", type=parse_timeout, default=default,
                       help=f"give up after this long, e.g. 30, 90m or 12h: {outcome} (default: %(default)s)")


def instance_request(args: argparse.Namespace, **overrides: object) -> InstanceRequest:
    """The InstanceRequest of parsed *args* (options a command lacks are None), with *overrides*."""
    values = {name: getattr(args, name, None) for name in REQUEST_FIELDS}
    values.update(overrides)
    return InstanceRequest(**values)


def offsite_url(args: argparse.Namespace, params: dict[str, str]) -> str | None:
    """The ``s3://`` prefix of ``--offsite``, else of the param files' ``offsite`` key; raise
    ValueError when it is not one."""
    url = getattr(args, "offsite", None) or params.get("offsite") or None
    if url:
        from check_itop_backup.offsite.location import Location

        Location.parse(url)
        from check_itop_backup.offsite import require_modules

        require_modules()
    return url


def store_settings(args: argparse.Namespace):
    """The StoreSettings (offsite/store.py) of ``--s3-endpoint-url`` and ``--s3-profile``."""
    from check_itop_backup.offsite.store import StoreSettings

    return StoreSettings(args.s3_endpoint_url or None, args.s3_profile or None)


def add_ticket_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "iTop tickets" option group to *parser*."""
    group = parser.add_argument_group(
        "iTop tickets",
        "Open one iTop Incident per failure episode over iTop's REST API, log on it while the "
        "failure lasts, say when it recovers. Each option falls back to the iTop param-file key "
        "in brackets. Ticket errors are reported in the long output and never change the state.")
    group.add_argument("--itop-url", metavar="URL",
                       help="root URL of the iTop that receives tickets; tickets are off without it "
                            "[itop_backup_incident]")
    group.add_argument("--itop-user", metavar="LOGIN",
                       help="iTop login with the profiles REST Services User and Service Desk Agent "
                            "[check_ticket_login]")
    group.add_argument("--itop-password-file", metavar="FILE",
                       help=f"file whose first line is the password (else ${TICKET_PASSWORD_ENV}, else "
                            "[check_ticket_pwd])")
    group.add_argument("--itop-basic-auth", action="store_true",
                       help="send the credentials as HTTP Basic (login_mode=basic), not as form fields")
    group.add_argument("--itop-api-version", metavar="VERSION", default="1.3",
                       help="REST API version (default %(default)s)")
    group.add_argument("--itop-ca-bundle", metavar="FILE",
                       help="CA certificates to verify iTop's TLS certificate (default: the system's)")
    group.add_argument("--itop-insecure", action="store_true",
                       help="do not verify iTop's TLS certificate (not recommended)")
    group.add_argument("--ticket-title", metavar="TEXT",
                       help="Incident title, also how an open Incident is found again "
                            "(default: 'Backup check failed on <impacted server or this host>') "
                            "[check_ticket_title]")
    group.add_argument("--ticket-customer", metavar="ORGANISATION",
                       help="name of the organisation the Incident belongs to [check_ticket_customer]")
    group.add_argument("--ticket-caller", metavar="NAME|EMAIL",
                       help="caller: a person's full name ('Agatha Christie') or e-mail (default: none)")
    group.add_argument("--ticket-service", metavar="NAME", help="service name [check_ticket_service]")
    group.add_argument("--ticket-service-subcategory", metavar="NAME",
                       help="service subcategory name [check_ticket_service_subcategory]")
    group.add_argument("--ticket-workgroup", metavar="TEAM", help="team name [check_ticket_workgroup]")
    group.add_argument("--ticket-impacted-server", metavar="CI",
                       help="name of the CI (the server running iTop) to link [check_ticket_impacted_server]")
    group.add_argument("--ticket-impact", choices=("1", "2", "3"), default="2",
                       help="1 a department, 2 a service, 3 a person (default %(default)s)")
    group.add_argument("--ticket-urgency", choices=("1", "2", "3", "4"), default="2",
                       help="1 critical … 4 low (default %(default)s)")
    group.add_argument("--ticket-on", choices=("critical", "warning"), default="critical",
                       help="open a ticket on CRITICAL only, or on WARNING too (default %(default)s)")
    group.add_argument("--ticket-update-every", metavar="DURATION", type=parse_duration,
                       default=DEFAULT_UPDATE_EVERY,
                       help="while the failure lasts, add at most one log entry this often "
                            "(default %(default)s)")
    group.add_argument("--ticket-resolve", action="store_true",
                       help="resolve the Incident when the backup recovers (default: only log it)")
    group.add_argument("--ticket-dry-run", action="store_true",
                       help="show the requests that would be sent (password masked); send nothing")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "deep verification" option group to the probe's parser."""
    group = parser.add_argument_group("deep verification")
    group.add_argument("--verify", metavar="LEVEL", choices=LEVELS, default="stat",
                       help="stat: only the file's name, age and size (default); archive: also read "
                            "the whole gzip stream and tar headers, required and safe members; dump: "
                            "also the dump's completion trailer, its tables and config-itop.php; "
                            "restore: also a test restore into a scratch database on the server of "
                            "--itop-config or the --db-* options, with table and row counts compared "
                            "and the scratch dropped. "
                            "CRITICAL with the reason when the archive fails")
    group.add_argument("--restore-every", metavar="DURATION", default=DEFAULT_RESTORE_EVERY,
                       help="with --verify restore: test-restore at most one archive of the series "
                            "per DURATION, the others at dump level (default: %(default)s)")
    group.add_argument("--verify-every", metavar="DURATION",
                       help="verify an archive again after this long, e.g. 7d (default: once per "
                            "archive; results are cached in the history)")
    group.add_argument("--table-shrink", metavar="TABLES", default="attachment,ticket,contact",
                       help="at dump level, compare the rows of these tables (comma separated, "
                            "without db_subname) with the median of the previous verified archives: "
                            "WARNING when one shrank by more than --table-shrink-warning, CRITICAL by "
                            "more than --table-shrink-critical or when it vanished; perfdata "
                            "rows_<table> (default: %(default)s; '' for none)")
    group.add_argument("--table-shrink-warning", metavar="PERCENT", type=percent, default="5%",
                       help="with --table-shrink: WARNING when a table has this much fewer rows than "
                            "its median (default: %(default)s)")
    group.add_argument("--table-shrink-critical", metavar="PERCENT", type=percent, default="20%",
                       help="with --table-shrink: CRITICAL when a table has this much fewer rows than "
                            "its median (default: %(default)s)")
    group.add_argument("--portable", action="store_true",
                       help="at dump level, WARNING for each thing that keeps the dump from loading "
                            "elsewhere, saying who refuses it: MariaDB's sandbox first line (MySQL's "
                            "client, older MariaDB clients), DEFINER= clauses (SUPER needed), GTID "
                            "statements (servers with GTID mode), a character set other than utf8mb4")
    group.add_argument("--compare-live-db", action="store_true",
                       help="with --verify dump: WARNING when a table of the live database "
                            "(from --itop-config or the --db-* options) is missing from the dump")
