"""The probe's settings: command line, then iTop param files, then config-itop.php, then defaults.

``check_settings(args)`` turns parsed arguments into one frozen ``CheckSettings``. Every
problem is a ``ConfigError`` with a one-line message (the CLI reports it as UNKNOWN).
Param files use iTop's key names; keys meant for other iTop tools are ignored with a
debug note, so iTop's own ``backup.params.distrib`` is accepted as is.
"""

from __future__ import annotations

import logging
import os
from argparse import Namespace
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from check_itop_backup.history import DEFAULT_PATH as DEFAULT_HISTORY
from check_itop_backup.history import ENV_VAR as HISTORY_ENV
from check_itop_backup.itop.naming import SCHEDULED_FORMAT, NamePattern, PatternError, host_of
from check_itop_backup.itop.paramfile import ParamFileError, load_param_files
from check_itop_backup.itop.schedule import DEFAULT_TIME, EVERY_DAY, Schedule, ScheduleError
from check_itop_backup.units import parse_duration, parse_percent, parse_size

log = logging.getLogger(__name__)

# Param-file keys the probe reads; other tools' keys it knows and ignores.
PROBE_PARAMS = ("backup_file", "check_size_min", "check_size_reduction_max")
TICKET_PARAMS = ("itop_backup_incident", "check_ticket_login", "check_ticket_pwd",
                 "check_ticket_title", "check_ticket_customer", "check_ticket_service",
                 "check_ticket_service_subcategory", "check_ticket_workgroup",
                 "check_ticket_impacted_server")
IGNORED_PARAMS = ("auth_user", "auth_pwd", "mysql_bindir")
_BACKUP_TEXTS = ("week_days", "time", "file_name_format")  # itop-backup settings read as strings
DEFAULT_GRACE = "2h"
DEFAULT_SETTLE = 120.0


class ConfigError(ValueError):
    """Settings that cannot be used; the message is one line for the operator."""


class ItopConfig(namedtuple("ItopConfig", "path db_host db_name db_subname timezone backup")):
    """What the probe and the runner take from config-itop.php: the database names, the
    timezone (or None) and the ``itop-backup`` module settings (``backup``, a dict)."""

    __slots__ = ()

    @property
    def root(self) -> str | None:
        """The iTop root when the file sits at its usual place, conf/<env>/config-itop.php."""
        conf_dir = os.path.dirname(os.path.dirname(os.path.abspath(self.path)))
        return os.path.dirname(conf_dir) if os.path.basename(conf_dir) == "conf" else None


def read_itop_config(path: str) -> ItopConfig:
    """Parse config-itop.php at *path* (without PHP); raise ConfigError on any problem."""
    from check_itop_backup.itop.phpconfig import PhpConfigError, load_php_config, setting_array, setting_text

    try:
        variables = load_php_config(path)
    except PhpConfigError as error:
        raise ConfigError(str(error)) from None
    try:
        if not isinstance(variables.get("MySettings"), dict):
            raise PhpConfigError("no $MySettings array")
        settings = variables["MySettings"]
        backup = setting_array(setting_array(variables, "MyModuleSettings"), "itop-backup")
        return ItopConfig(
            path=path,
            db_host=setting_text(settings, "db_host"),
            db_name=setting_text(settings, "db_name"),
            db_subname=setting_text(settings, "db_subname"),
            timezone=setting_text(settings, "timezone") or None,
            backup=dict(backup, **{key: setting_text(backup, key) for key in _BACKUP_TEXTS if key in backup}),
        )
    except PhpConfigError as error:
        raise ConfigError(f"cannot use iTop config {path}: {error}") from None


class CheckSettings(namedtuple("CheckSettings", "pattern timezone timezone_name schedule grace now "
                                                 "settle size_min warning_age critical_age params "
                                                 "itop_config history_path baseline_count min_history "
                                                 "warning_change critical_change size_reduction_max "
                                                 "retention_count")):
    """Everything the probe needs to decide, resolved from all sources.

    ``pattern`` (NamePattern), ``timezone`` (tzinfo or None for local) and its name,
    ``schedule`` (Schedule), ``grace`` (timedelta), ``now`` (aware datetime), ``settle`` (s),
    ``size_min`` (B), ``warning_age``/``critical_age`` (s or None), ``params`` (the merged
    param files), ``itop_config`` (ItopConfig or None), ``history_path``, ``baseline_count`` and
    ``min_history`` (archives), ``warning_change``/``critical_change`` (percent ranges),
    ``size_reduction_max`` (percent or None), ``retention_count`` (archives or None).
    """

    __slots__ = ()

    @property
    def due_slot(self) -> datetime:
        """The latest scheduled backup start whose grace has passed: the backup expected now."""
        return self.schedule.last_due_slot(self.local_now, self.grace)

    @property
    def local_now(self) -> datetime:
        """Now as a naive wall-clock time in iTop's timezone (how iTop names archives)."""
        return self.now.astimezone(self.timezone).replace(tzinfo=None)

    def to_epoch(self, local: datetime) -> float:
        """Epoch seconds of a naive wall-clock time in iTop's timezone."""
        return local.replace(tzinfo=self.timezone).timestamp() if self.timezone \
            else local.timestamp()


def timezone_named(name: str | None) -> tuple[tzinfo | None, str]:
    """Return the zone of IANA *name* and its label; (None, "local") without a name."""
    if not name:
        return None, "local"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None


def _parse(parser: Callable[[str], float], text: str, option: str) -> float:
    try:
        return parser(text)
    except ValueError as error:
        raise ConfigError(f"{option}: {error}") from None


def _params(spec: str | None) -> dict[str, str]:
    if not spec:
        return {}
    try:
        params = load_param_files(spec)
    except ParamFileError as error:
        raise ConfigError(str(error)) from None
    for key in params:
        if key in IGNORED_PARAMS:
            log.debug("param file: %s is for iTop's own scripts; ignored", key)
        elif key not in PROBE_PARAMS + TICKET_PARAMS:
            log.debug("param file: unknown key %s ignored", key)
    return params


def _pattern_spec(args: Namespace, params: dict[str, str], itop: ItopConfig | None) -> str:
    if args.backup_file:
        return args.backup_file
    if params.get("backup_file"):
        return params["backup_file"]
    if itop is None:
        raise ConfigError("no backup file pattern: give --backup-file, a --param-file with "
                          "backup_file, or --itop-config")
    if itop.root is None:
        raise ConfigError(f"cannot tell the iTop root from {itop.path} (not in conf/<env>/): "
                          "give --backup-file")
    name = itop.backup.get("file_name_format") or SCHEDULED_FORMAT
    return os.path.join(itop.root, "data", "backups", "auto", name)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--now: invalid time {text!r} (use ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def check_settings(args: Namespace) -> CheckSettings:
    """Resolve the probe's settings from parsed arguments and the files they name."""
    params = _params(args.param_file)
    itop = read_itop_config(args.itop_config) if args.itop_config else None
    backup = itop.backup if itop else {}
    db_host = args.db_host if args.db_host is not None else (itop.db_host if itop else "")
    db_name = args.db_name if args.db_name is not None else (itop.db_name if itop else "")
    subname = args.db_subname if args.db_subname is not None else (itop.db_subname if itop else "")
    # Absolute, as iTop resolves it against the working directory: the pattern names the series.
    spec = os.path.abspath(_pattern_spec(args, params, itop))
    try:
        pattern = NamePattern.from_spec(spec, host=host_of(db_host), db=db_name, subname=subname)
    except PatternError as error:
        raise ConfigError(str(error)) from None
    timezone, timezone_name = timezone_named(args.timezone or (itop.timezone if itop else None))
    try:
        schedule = Schedule.parse(args.week_days or backup.get("week_days") or EVERY_DAY,
                                  args.time or backup.get("time") or DEFAULT_TIME)
    except ScheduleError as error:
        raise ConfigError(str(error)) from None
    size_min_text = args.size_min or params.get("check_size_min") or "0"
    reduction_text = args.size_reduction_max or params.get("check_size_reduction_max")
    retention = args.retention_count if args.retention_count is not None else backup.get("retention_count")
    return CheckSettings(
        pattern=pattern,
        timezone=timezone,
        timezone_name=timezone_name,
        schedule=schedule,
        grace=timedelta(seconds=_parse(parse_duration, args.grace, "--grace")),
        now=_now(args.now),
        settle=_parse(parse_duration, args.settle, "--settle"),
        size_min=_parse(parse_size, size_min_text, "--size-min"),
        warning_age=_parse(parse_duration, args.warning_age, "--warning-age")
        if args.warning_age else None,
        critical_age=_parse(parse_duration, args.critical_age, "--critical-age")
        if args.critical_age else None,
        params=params,
        itop_config=itop,
        history_path=args.history or os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY,
        baseline_count=args.baseline_count,
        min_history=args.min_history,
        warning_change=_percent_range(args.warning_change, "--warning-change"),
        critical_change=_percent_range(args.critical_change, "--critical-change"),
        size_reduction_max=_parse(parse_percent, reduction_text, "--size-reduction-max")
        if reduction_text else None,
        retention_count=_positive(retention, "retention_count"),
    )


def _percent_range(text: str, option: str) -> str:
    """Check a percent range such as ``-20:100`` (nagiosplugin's Range syntax) and return it."""
    import nagiosplugin

    try:
        nagiosplugin.Range(text)
    except ValueError:
        raise ConfigError(f"{option}: invalid range {text!r} (use e.g. -20:100)") from None
    return text


def _positive(value: object, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: not a number: {value!r}") from None
    return number if number > 0 else None
