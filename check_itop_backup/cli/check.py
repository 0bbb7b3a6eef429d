"""``check_itop_backup``: the monitoring plugin's command line and run.

The only module that reads argv, prints the verdict and chooses the exit status.
One alarm (``deadline``) covers the whole run; bad arguments, unusable settings, a
timeout and internal errors all exit 3 (UNKNOWN) with one line saying why.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

import nagiosplugin

from check_itop_backup import __version__, deadline
from check_itop_backup.check.contexts import (
    AgeContext,
    ExposureContext,
    ItopBackupSummary,
    LeftoversContext,
    MissingContext,
    OverdueContext,
    PortabilityContext,
    ReductionContext,
    ReportContext,
    RetentionContext,
    SizeChangeContext,
    SizeContext,
    TableRowsContext,
    VerificationWarningsContext,
    VerifiedContext,
    describe_slot,
)
from check_itop_backup.check.resource import ItopBackup, record_verdict
from check_itop_backup.check.settings import DEFAULT_GRACE, DEFAULT_SETTLE, CheckSettings, check_settings
from check_itop_backup.check.verification import Verifier, verify_settings
from check_itop_backup.cli.answer import json_text, nagios_text, status_line
from check_itop_backup.cli.closedpipe import quiet_when_stdout_closes, stdout_gone
from check_itop_backup.cli.options import (
    DEFAULT_RESTORE_EVERY,
    add_options,
    add_ticket_arguments,
    add_timeout_option,
    add_verify_arguments,
    instance_label,
    instance_request,
    positive_int,
)
from check_itop_backup.deadline import Deadline, StageTimeoutError
from check_itop_backup.history import History, HistoryError
from check_itop_backup.itop.instance import ConfigError, resolve_instance
from check_itop_backup.tickets.settings import TicketSettings, ticket_settings
from check_itop_backup.units import format_duration

PLUGIN = "ITOP_BACKUP"
UNKNOWN = 3
log = logging.getLogger("check_itop_backup")

DESCRIPTION = """\
Check the newest iTop backup archive: there, on time for the schedule, old and
big enough.

States: CRITICAL when the archive of the last scheduled backup (its grace
period over) is missing, empty or not above --size-min; WARNING/CRITICAL when
older than --warning-age / --critical-age; UNKNOWN when the check cannot tell
(bad arguments, unreadable directory or config, timeout). An archive modified
in the last --settle seconds is still being written (in a directory
itop-backup run writes: its hidden temporary while it holds its lock): the
previous one is judged instead; OK inside the backup's window, WARNING past its
grace, CRITICAL past --critical-age. A world-readable archive is a WARNING.

Perfdata: age (s, since the archive was last written), size (B), size_change
(%, vs the baseline), baseline (B, median of earlier good archives), size_z
(robust z-score), history (archives recorded for this pattern).
"""


RANGE = "RANGE"  # the metavar of every option taking a Nagios range
FORMATS = ("nagios", "json", "prometheus", "checkmk")
MACHINE_FORMATS = ("prometheus", "checkmk")  # built from the Outcome (cli/outcome.py)


def takes_range(action: argparse.Action) -> bool:
    """True for an option whose value is a Nagios range, which may start with ``-``."""
    return action.metavar == RANGE


class ParagraphFormatter(argparse.HelpFormatter):
    """Fill each paragraph of a description to the terminal's width (80 columns fit)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(super(ParagraphFormatter, self)._fill_text(paragraph, width, indent)
                             for paragraph in text.split("\n\n"))


class UnknownExitParser(argparse.ArgumentParser):
    """An argument parser that exits UNKNOWN (3), as monitoring plugins must, not 2 (CRITICAL).

    A range option's value may start with ``-`` (``--warning-change -30:100``), which argparse
    takes for an option: such a pair is joined into ``--warning-change=-30:100`` first.
    """

    wanted_format = "nagios"  # set by check_main from the raw arguments: errors come before parsing ends

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        return super().parse_known_args(self._join_ranges(sys.argv[1:] if args is None else args),
                                        namespace)

    def _join_ranges(self, args: Sequence[str]) -> list[str]:
        options = {o for action in self._actions if takes_range(action) for o in action.option_strings}
        joined: list[str] = []
        for arg in args:
            if joined and joined[-1] in options and arg.startswith("-") and not arg.startswith("--"):
                joined[-1] += "=" + arg
            else:
                joined.append(arg)
        return joined

    def error(self, message: str) -> None:
        if self.wanted_format != "nagios":  # Zabbix, Prometheus, Checkmk read stdout only: exit 0
            sys.exit(_unknown(argparse.Namespace(format=self.wanted_format), f"bad arguments: {message}"))
        print(f"{PLUGIN} UNKNOWN - bad arguments: {message}")
        print(self.format_usage().strip())
        sys.exit(UNKNOWN)

    def exit(self, status: int = 0, message: str | None = None) -> None:
        if message:
            print(message.strip())
        sys.exit(UNKNOWN)  # --help and --version exit 3 too (Monitoring Plugins guidelines)


def build_check_parser() -> argparse.ArgumentParser:
    parser = UnknownExitParser(prog="check_itop_backup", description=DESCRIPTION,
                               formatter_class=ParagraphFormatter)
    where = parser.add_argument_group("which archive")
    add_options(where, "backup_file", "param_file", "itop_config", "itop_root", "db_name", "db_host",
                "db_subname", "timezone")
    when = parser.add_argument_group("when backups are due")
    when.add_argument("--week-days", metavar="DAYS",
                      help="backup days as iTop writes them, e.g. 'monday, tuesday, wednesday, "
                           "thursday, friday' (default: the config's itop-backup week_days, else daily)")
    when.add_argument("--time", metavar="HH:MM",
                      help="backup start time (default: the config's itop-backup time, else 23:30)")
    when.add_argument("--grace", metavar="DURATION", default=DEFAULT_GRACE,
                      help="how long after the start time the archive must exist (default %(default)s)")
    judge = parser.add_argument_group("thresholds")
    judge.add_argument("-w", "--warning-age", metavar="DURATION",
                       help="WARNING when the archive is older, e.g. 26h, 2d (default: none)")
    judge.add_argument("-c", "--critical-age", metavar="DURATION",
                       help="CRITICAL when the archive is older (default: none)")
    judge.add_argument("--size-min", metavar="SIZE",
                       help="CRITICAL when the archive is not above SIZE: bytes, 20MB or 20MiB "
                            "(iTop's check_size_min; default 0: only an empty archive)")
    trend = parser.add_argument_group("size history and trend")
    add_options(trend, "history")
    trend.add_argument("--baseline-count", metavar="N", type=positive_int, default=7,
                       help="baseline = median size of the last N archives not judged CRITICAL "
                            "(default %(default)s)")
    trend.add_argument("--min-history", metavar="N", type=positive_int, default=3,
                       help="fewer earlier archives than this: OK, learning (default %(default)s)")
    trend.add_argument("--warning-change", metavar=RANGE, default="-20:100",
                       help="WARNING when the size change vs the baseline, in percent, is outside "
                            "RANGE (default %(default)s: shrunk by 20%% or grown by 100%%)")
    trend.add_argument("--critical-change", metavar=RANGE, default="-50:300",
                       help="CRITICAL when the size change is outside RANGE (default %(default)s)")
    trend.add_argument("--size-reduction-max", metavar="PCT",
                       help="CRITICAL when the archive is more than PCT%% smaller than the previous "
                            "one (iTop's check_size_reduction_max)")
    add_options(trend, "retention_count")
    judge.add_argument("--settle", metavar="SECONDS", default=str(int(DEFAULT_SETTLE)),
                       help="an archive modified less than this ago is still being written "
                            "(default %(default)s)")
    add_ticket_arguments(parser)
    add_verify_arguments(parser)
    offsite = parser.add_argument_group(
        "copies in object storage",
        "Judge the copy of the archive in S3-compatible storage too (listing and HEAD requests only): "
        "WARNING when it has none after --offsite-grace, CRITICAL after --critical-age, CRITICAL when "
        "its size or dump SHA-256 differ; a store that cannot be asked is UNKNOWN for this part only. "
        "Perfdata: offsite_age, offsite_size, offsite_lag.")
    add_options(offsite, "offsite", "s3_endpoint_url", "s3_profile")
    offsite.add_argument("--offsite-grace", metavar="DURATION", default="1h",
                         help="how long after the archive its copy must exist (default %(default)s)")
    offsite.add_argument("--offsite-verify-every", metavar="DURATION",
                         help="with --verify dump (or restore): also verify the copy, streamed from the "
                              "store, at dump level this often, e.g. 7d (default: never)")
    cron = parser.add_argument_group("iTop's scheduler")
    cron.add_argument("--itop-cron", action="store_true",
                      help="also judge iTop's scheduled backup, the BackupExec task of cron.php, from its "
                           "row of priv_backgroundtask in the database of --itop-config (dates in iTop's "
                           "timezone): CRITICAL when cron.php has not run since the task was due "
                           "(--grace), when the backup has been running longer than its longest run + "
                           "--grace, or when cron.php never ran; WARNING when scheduled backups are "
                           "disabled ('enabled' => false). Perfdata cron_lag (s), backup_task_duration (s). "
                           "The account needs only SELECT on that table (GRANT SELECT ON "
                           "itop.priv_backgroundtask TO ...); an unreachable database is UNKNOWN for "
                           "this result only, the archive's verdict stands")
    server = parser.add_argument_group("database server (--verify restore, --compare-live-db, --itop-cron)")
    add_options(server, "db_port", "db_user", "db_password_file", "db_option_file")
    run = parser.add_argument_group("output and run")
    run.add_argument("--format", choices=FORMATS, default="nagios",
                     help="nagios: status line and perfdata, exit 0-3 (default); json: one JSON "
                          "object (for Zabbix); prometheus: Prometheus text exposition; checkmk: "
                          "Checkmk local-check lines; all but nagios exit 0 whatever the state")
    run.add_argument("--prometheus-textfile", metavar="PATH",
                     help="also write the Prometheus metrics to PATH atomically, for node_exporter's "
                          "textfile collector (PATH ends in .prom); the answer is printed as usual")
    add_options(run, "instance")
    run.add_argument("--print-expected", action="store_true",
                     help="print the resolved pattern, schedule slot and expected name, then exit")
    run.add_argument("--discover", metavar="DIR",
                     help="print Zabbix low-level discovery JSON for the iTop param files "
                          "DIR/*.params (one instance each), then exit")
    add_timeout_option(run, "30", "UNKNOWN", short=True)
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="more output (up to -vvv)")
    run.add_argument("-V", "--version", action="version", version=f"check_itop_backup {__version__}")
    run.add_argument("--now", help=argparse.SUPPRESS)  # replay a past moment (tests, support)
    return parser


class ItopBackupCheck(nagiosplugin.Check):
    """A Check that records its verdict in the history, then runs follow-up actions (tickets).

    A history that cannot be written makes the run UNKNOWN (HistoryError). Each action gets
    the finished check and returns lines for the long output; an action never changes the
    verdict: its errors become a warning line.
    """

    def __init__(self, *objects: object, actions: list[Callable] | None = None) -> None:
        super().__init__(*objects, name=PLUGIN)
        self.actions = actions or []
        self.action_lines: list[str] = []

    @property
    def state(self) -> nagiosplugin.state.ServiceState:
        state = super().state
        if "offsite_error" in self.results:  # UNKNOWN for that part only: the local results stand
            from check_itop_backup.check.offsite import weighed_state

            return weighed_state(self.results)
        return state

    @property
    def exitcode(self) -> int:
        return int(self.state)

    def __call__(self) -> None:
        super().__call__()
        record_verdict(self)
        for action in self.actions:
            try:
                self.action_lines.extend(action(self) or [])
            except StageTimeoutError:
                raise
            except Exception as error:  # noqa: BLE001 - an action must never change the verdict
                log.warning("%s failed: %s", getattr(action, "__name__", "action"), error)


def build_check(settings: CheckSettings, history: History, tickets: TicketSettings | None = None,
                verifier: Verifier | None = None, offsite: object | None = None,
                scheduler: object | None = None) -> ItopBackupCheck:
    """The check; with *tickets*, its follow-up action opens and updates iTop Incidents; with
    *verifier*, the judged archive is verified (``--verify``); with *offsite* (OffsiteSettings),
    its copy in object storage is judged too; with *scheduler* (check/cron.py's SchedulerCheck),
    iTop's BackupExec task is judged (``--itop-cron``)."""
    actions = []
    if tickets is not None:
        from check_itop_backup.tickets.episode import check_action  # only when tickets are configured

        actions.append(check_action(tickets))
    extra = []
    probe = None
    if offsite is not None:
        from check_itop_backup.check.offsite import OffsiteProbe, offsite_contexts  # only with --offsite

        probe = OffsiteProbe(offsite)
        extra = offsite_contexts(probe, settings.warning_age, settings.critical_age)
    if scheduler is not None:
        from check_itop_backup.check.cron import SchedulerContext

        extra.append(SchedulerContext(settings))
    resource = ItopBackup(settings, history, verifier, probe, scheduler)
    return ItopBackupCheck(
        resource,
        MissingContext(settings),
        OverdueContext(settings),
        AgeContext(settings.warning_age, settings.critical_age),
        SizeContext(settings.size_min),
        SizeChangeContext(settings.warning_change, settings.critical_change),
        ReductionContext(settings.size_reduction_max),
        RetentionContext(),
        ExposureContext(),
        LeftoversContext(),
        VerifiedContext(),
        VerificationWarningsContext(),
        TableRowsContext(),
        PortabilityContext(),
        ReportContext(),
        *extra,
        ItopBackupSummary(resource),
        actions=actions,
    )


def print_expected(settings: CheckSettings) -> None:
    slot = settings.due_slot
    pattern = settings.pattern
    print(f"pattern: {pattern.pattern}")
    print(f"timezone: {settings.timezone_name}; now {describe_slot(settings.local_now)}")
    print(f"schedule: {settings.schedule.describe()}, grace "
          f"{format_duration(settings.grace.total_seconds())}")
    print(f"expected slot: {describe_slot(slot)}")
    if pattern.has_time_codes:
        later = "" if pattern.precision in ("day", "month", "year") else " (or a later name)"
        print(f"expected name: {pattern.render(slot)}{later}")
        print(f"glob: {pattern.glob}")
    else:
        print(f"expected name: {pattern.pattern} (written after {describe_slot(slot)})")


def _capture_logs(verbose: int) -> io.StringIO:
    """Collect the package's and nagiosplugin's log records for the long output (never stderr):
    warnings, with ``-vv`` information, with ``-vvv`` debugging."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO if verbose == 2 else logging.WARNING)
    for logger in (log, logging.getLogger("nagiosplugin")):
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
    log.propagate = False
    return stream


def _answer(check: ItopBackupCheck, args: argparse.Namespace, logs: io.StringIO,
            settings: CheckSettings) -> str:
    """The finished check's answer in the format asked; the JSON metrics are the numbers of the
    metrics that write perfdata. With ``--prometheus-textfile`` the textfile is written too."""
    if args.format in MACHINE_FORMATS or args.prometheus_textfile:
        from check_itop_backup.cli.outcome import machine_answer, outcome_of, write_textfile

        outcome = outcome_of(check, instance_label(args, settings.instance.database.name))
        problem = write_textfile(args.prometheus_textfile, outcome)
        if args.format in MACHINE_FORMATS:
            return machine_answer(args.format, outcome) + problem
        return _nagios_answer(check, args, logs) + problem
    if args.format == "nagios":
        return _nagios_answer(check, args, logs)
    resource = check.resources[0]
    selection, verification = resource.selection, resource.verification
    measured = (result.metric for result in check.results.results)  # in the order they were measured
    metrics = {metric.name: metric.value for metric in measured
               if metric is not None and metric.performance() is not None}
    return json_text(str(check.state), check.exitcode, check.summary_str,
                     archive=selection.judged.path if selection and selection.judged else None,
                     expected=selection.expected if selection else None, metrics=metrics,
                     verification=str(verification) if verification else None, actions=check.action_lines)


def _nagios_answer(check: ItopBackupCheck, args: argparse.Namespace, logs: io.StringIO) -> str:
    return nagios_text(status_line(PLUGIN, str(check.state), check.summary_str.strip()), check.perfdata,
                       check.verbose_str or [], check.action_lines, logs.getvalue(), args.verbose)


def _run(args: argparse.Namespace, logs: io.StringIO) -> int:
    with deadline.current.stage("reading the configuration"):
        settings = check_settings(args, resolve_instance(instance_request(args)))
        verifier = _verifier(args, settings)
        offsite = _offsite(args, settings)
    if args.print_expected:
        print_expected(settings)
        return 0
    with deadline.current.stage(f"opening the history {settings.history_path}"):
        history = History.open(settings.history_path)
    try:
        module = settings.instance.module or None  # itop_backup_incident
        tickets = ticket_settings(args, settings.params, itop_backup_module=module)
        check = build_check(settings, history, tickets, verifier, offsite, _scheduler(args, settings))
        check()
    finally:
        history.close()
    print(_answer(check, args, logs, settings), end="")
    return check.exitcode if args.format == "nagios" else 0


def _verifier(args: argparse.Namespace, settings: CheckSettings) -> Verifier | None:
    """The verifier for ``--verify`` above ``stat``, else None; raise ConfigError on bad options."""
    try:
        verify = verify_settings(args, settings.instance)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return Verifier(verify) if verify.level != "stat" else None


def _offsite(args: argparse.Namespace, settings: CheckSettings):
    """The OffsiteSettings of ``--offsite`` (or the param files' ``offsite``), else None."""
    from check_itop_backup.cli.options import offsite_url, store_settings
    from check_itop_backup.units import parse_duration

    try:
        url = offsite_url(args, settings.params)
        grace = parse_duration(args.offsite_grace)
        every = parse_duration(args.offsite_verify_every) if args.offsite_verify_every else None
    except ValueError as error:
        raise ConfigError(f"offsite: {error}") from None
    if every is not None and (url is None or args.verify not in ("dump", "restore")):
        raise ConfigError("--offsite-verify-every needs --offsite and --verify dump (or restore)")
    if url is None:
        return None
    from check_itop_backup.check.offsite import OffsiteSettings
    from check_itop_backup.offsite.location import Location

    return OffsiteSettings(Location.parse(url), store_settings(args), grace, every)


def _scheduler(args: argparse.Namespace, settings: CheckSettings) -> object | None:
    """check/cron.py's SchedulerCheck with ``--itop-cron``, else None; raise ConfigError."""
    if not args.itop_cron:
        return None
    if not settings.instance.database.name:
        raise ConfigError("--itop-cron needs --itop-config or --db-name (the iTop database)")
    from check_itop_backup.check.cron import SchedulerCheck, backups_enabled

    return SchedulerCheck(settings.instance.database, backups_enabled(settings.instance.module))


def _unknown(args: argparse.Namespace, message: str) -> int:
    text, status = _unknown_answer(args, message)
    print(text, end="")
    return status


def _unknown_answer(args: argparse.Namespace, message: str) -> tuple[str, int]:
    """The UNKNOWN output (one line; two Checkmk lines with ``--verify restore``) and exit status
    for *message*, in the format asked; ``--prometheus-textfile`` gets state 3 too."""
    if args.format == "json":
        return json_text("unknown", UNKNOWN, message), 0
    textfile = getattr(args, "prometheus_textfile", None)
    if args.format == "nagios" and not textfile:
        return status_line(PLUGIN, "unknown", message) + "\n", UNKNOWN
    from check_itop_backup.cli.outcome import machine_answer, unknown_outcome, write_textfile

    outcome = unknown_outcome(instance_label(args), message, _restore_every(args))
    problem = write_textfile(textfile, outcome)
    if args.format == "nagios":
        return status_line(PLUGIN, "unknown", message) + "\n" + problem, UNKNOWN
    return machine_answer(args.format, outcome) + problem, 0


def _restore_every(args: argparse.Namespace) -> float | None:
    """``--restore-every`` in seconds with ``--verify restore`` (its default when it does not parse)."""
    if getattr(args, "verify", None) != "restore":
        return None
    from check_itop_backup.units import parse_duration

    try:
        return parse_duration(args.restore_every)
    except ValueError:
        return parse_duration(DEFAULT_RESTORE_EVERY)


def _discover(args: argparse.Namespace) -> int:
    from check_itop_backup.itop.discover import DiscoveryError, discovery_json

    try:
        print(discovery_json(args.discover))
    except DiscoveryError as error:
        return _unknown(args, str(error))
    return 0


def check_main(argv: list[str] | None = None) -> None:
    """Entry point of ``check_itop_backup``."""
    with quiet_when_stdout_closes(UNKNOWN):
        parser = build_check_parser()
        raw = sys.argv[1:] if argv is None else argv
        parser.wanted_format = next((name for name in FORMATS[1:] if f"--format={name}" in raw
                                     or ["--format", name] in map(list, zip(raw, raw[1:]))), "nagios")
        args = parser.parse_args(argv)
        if args.discover is not None:  # an empty DIR (a Zabbix macro not set) is an error too
            sys.exit(_discover(args))
        sys.exit(_check(args))


def _check(args: argparse.Namespace) -> int:
    logs = _capture_logs(args.verbose)
    deadline.current = Deadline(args.timeout).start(lambda message: _unknown_answer(args, message))
    try:
        return _run(args, logs)
    except StageTimeoutError as error:
        return _unknown(args, str(error))
    except (ConfigError, HistoryError) as error:
        return _unknown(args, str(error))
    except Exception as error:  # noqa: BLE001 - a plugin must answer UNKNOWN, not crash
        if isinstance(error, BrokenPipeError) and stdout_gone():
            raise  # nobody reads the answer: quiet_when_stdout_closes ends the run
        status = _unknown(args, f"internal error: {type(error).__name__}: {error}")
        if args.verbose:
            print(traceback.format_exc(), end="")
        return status
    finally:
        deadline.current.cancel()
