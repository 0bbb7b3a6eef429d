"""The probe's settings: its thresholds and own options, on top of the resolved iTop instance.

``check_settings(args, instance)`` turns parsed arguments and the ``ItopInstance`` (pattern,
timezone, schedule, database; itop/instance.py) into one ``CheckSettings``. Every
problem is a ``ConfigError`` with a one-line message (the CLI reports it as UNKNOWN).
Param files use iTop's key names; keys meant for other iTop tools are ignored with a
debug note, so iTop's own ``backup.params.distrib`` is accepted as is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from types import SimpleNamespace

from check_itop_backup.history import DEFAULT_PATH as DEFAULT_HISTORY
from check_itop_backup.history import ENV_VAR as HISTORY_ENV
from check_itop_backup.itop.instance import IGNORED_PARAMS, ConfigError, ItopInstance
from check_itop_backup.itop.naming import NamePattern
from check_itop_backup.units import parse_duration, parse_percent, parse_size

log = logging.getLogger(__name__)

# Param-file keys the probe reads; other tools' keys it knows and ignores.
PROBE_PARAMS = ("backup_file", "check_size_min", "check_size_reduction_max", "offsite")
TICKET_PARAMS = ("itop_backup_incident", "check_ticket_login", "check_ticket_pwd",
                 "check_ticket_title", "check_ticket_customer", "check_ticket_service",
                 "check_ticket_service_subcategory", "check_ticket_workgroup",
                 "check_ticket_impacted_server")
DEFAULT_GRACE = "2h"
DEFAULT_SETTLE = 120.0


class CheckSettings(SimpleNamespace):
    """Everything the probe needs to decide, resolved from all sources, by keyword.

    ``instance`` (the ItopInstance: pattern, timezone, param files), ``schedule`` (Schedule),
    ``grace`` (timedelta), ``now`` (aware datetime), ``settle`` (s), ``size_min`` (B),
    ``warning_age``/``critical_age`` (s or None), ``history_path``, ``baseline_count`` and
    ``min_history`` (archives), ``warning_change``/``critical_change`` (percent ranges),
    ``size_reduction_max`` (percent or None), ``retention_count`` (archives or None).
    A SimpleNamespace, as the records of itop/instance.py, for the probe's start-up.
    """

    @property
    def pattern(self) -> NamePattern:
        return self.instance.pattern

    @property
    def timezone(self) -> tzinfo | None:
        """iTop's timezone (None: local time)."""
        return self.instance.timezone

    @property
    def timezone_name(self) -> str:
        return self.instance.timezone_name

    @property
    def params(self) -> dict[str, str]:
        """The merged param files."""
        return self.instance.params

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


def _parse(parser: Callable[[str], float], text: str, option: str) -> float:
    try:
        return parser(text)
    except ValueError as error:
        raise ConfigError(f"{option}: {error}") from None


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now().astimezone()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--now: invalid time {text!r} (use ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.astimezone()


def check_settings(args: object, instance: ItopInstance) -> CheckSettings:
    """Resolve the probe's settings from parsed arguments (an argparse Namespace) on top of *instance*."""
    params = instance.params
    for key in params:
        if key not in PROBE_PARAMS + TICKET_PARAMS + IGNORED_PARAMS:
            log.debug("param file: unknown key %s ignored", key)
    size_min_text = args.size_min or params.get("check_size_min") or "0"
    reduction_text = args.size_reduction_max or params.get("check_size_reduction_max")
    return CheckSettings(
        instance=instance,
        schedule=instance.schedule(args.week_days, args.time),
        grace=timedelta(seconds=_parse(parse_duration, args.grace, "--grace")),
        now=_now(args.now),
        settle=_parse(parse_duration, args.settle, "--settle"),
        size_min=_parse(parse_size, size_min_text, "--size-min"),
        warning_age=_parse(parse_duration, args.warning_age, "--warning-age")
        if args.warning_age else None,
        critical_age=_parse(parse_duration, args.critical_age, "--critical-age")
        if args.critical_age else None,
        history_path=args.history or os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY,
        baseline_count=args.baseline_count,
        min_history=args.min_history,
        warning_change=_percent_range(args.warning_change, "--warning-change"),
        critical_change=_percent_range(args.critical_change, "--critical-change"),
        size_reduction_max=_parse(parse_percent, reduction_text, "--size-reduction-max")
        if reduction_text else None,
        retention_count=instance.retention_count if (instance.retention_count or 0) > 0 else None,
    )


def _percent_range(text: str, option: str) -> str:
    """Check a percent range such as ``-20:100`` (nagiosplugin's Range syntax) and return it."""
    import nagiosplugin

    try:
        nagiosplugin.Range(text)
    except ValueError:
        raise ConfigError(f"{option}: invalid range {text!r} (use e.g. -20:100)") from None
    return text
