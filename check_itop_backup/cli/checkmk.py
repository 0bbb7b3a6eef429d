"""The check's answer as Checkmk local-check lines (``--format checkmk``).

One line per service, ``<state> "<service>" <metrics> <text>`` (Checkmk's local-check
format): ``iTop backup <instance>`` with the check's own state (0-3), and with ``--verify
restore`` ``iTop restore test <instance>`` with state ``P``: Checkmk computes it from the
line's thresholds (the newest test restore's age against ``--restore-every``, and whether it
failed). Metrics are ``name=value;warn;crit`` joined by ``|`` (``-`` for none), with Checkmk's
levels: ``upper`` or ``lower:upper``. The text is one line; further lines are joined with a
literal ``\\n``, which Checkmk shows as the long output.
"""

from __future__ import annotations

import math
import os

import nagiosplugin

from check_itop_backup.cli.outcome import Outcome
from check_itop_backup.units import format_duration

BACKUP_SERVICE = "iTop backup"
RESTORE_SERVICE = "iTop restore test"
RESTORE_WARN_FACTOR, RESTORE_CRIT_FACTOR = 1.5, 2.0  # of --restore-every: a test restore is late, then stale


def local_check_lines(outcome: Outcome) -> str:
    """The Checkmk local-check lines of *outcome* (the restore test's only with --verify restore)."""
    instance = _service_safe(outcome.instance)
    metrics = [_metric(m.name, m.value, *_levels(m.limits)) for m in outcome.metrics]
    lines = [_line(str(outcome.state), f"{BACKUP_SERVICE} {instance}", metrics, outcome.text,
                   outcome.details)]
    if outcome.restore_every is not None:
        lines.append(_restore_line(outcome, f"{RESTORE_SERVICE} {instance}"))
    return "".join(lines)


def _restore_line(outcome: Outcome, service: str) -> str:
    test = outcome.restore_test
    if test is None:  # the check could not tell, or no test restore ran yet
        return _line("3", service, [], f"no test restore known: {outcome.text}" if outcome.state == 3
                     else "no test restore known")
    every = outcome.restore_every
    age = max(0.0, outcome.now - test.verified_at)
    metrics = [_metric("restore_test_age", round(age), _number(every * RESTORE_WARN_FACTOR),
                       _number(every * RESTORE_CRIT_FACTOR)),
               _metric("restore_test_failed", int(test.state == "critical"), "", "0.5")]
    text = (f"test restore of {os.path.basename(test.path)} {format_duration(age)} ago: {test.state}: "
            f"{test.message}")
    if outcome.state == 3:  # this run could not tell: say why, Checkmk still judges the last test's age
        text = f"{outcome.text}; last {text}"
    return _line("P", service, metrics, text)


def _line(state: str, service: str, metrics: list[str], text: str, details: tuple[str, ...] = ()) -> str:
    shown = "\\n".join(part.replace("\n", "\\n") for part in (text, *details) if part)
    return f'{state} "{service}" {"|".join(metrics) or "-"} {shown or "-"}\n'


def _metric(name: str, value: float, warn: str = "", crit: str = "") -> str:
    return f"{name}={_number(value)};{warn};{crit}".rstrip(";")


def _levels(limits: tuple[tuple[int, nagiosplugin.Range], ...]) -> tuple[str, str]:
    """Checkmk's (warn, crit) levels of a context's Nagios ranges; an inverted range (``@``) has none."""
    levels = {code: _level(limit) for code, limit in limits if not limit.invert}
    return levels.get(1, ""), levels.get(2, "")


def _level(limit: nagiosplugin.Range) -> str:
    """``lower:upper`` (either side empty) of a Nagios range; 0, the floor of our metrics, is no
    lower level."""
    lower = "" if limit.start in (0, -math.inf) else _number(limit.start)
    upper = "" if limit.end == math.inf else _number(limit.end)
    return f"{lower}:{upper}" if lower else upper


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(round(value, 4))


def _service_safe(name: str) -> str:
    """Checkmk refuses quotes in a service name."""
    return name.replace('"', "").replace("'", "") or "itop"
