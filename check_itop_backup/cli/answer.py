"""The check's answer as the monitoring system reads it: Nagios text or one JSON object.

The only writer of both (``cli/check.py`` prints what it returns). The Nagios text is laid out
as nagiosplugin's ``Output`` lays it out: the status line (with the perfdata at ``-v0``), the
long output, the log records, warnings about removed characters, then the perfdata on a line
of its own at ``-v1`` and up.
"""

from __future__ import annotations

from collections.abc import Sequence

ILLEGAL = "|"  # separates the perfdata in the plugin API: removed from every text


def status_line(name: str, state: str, message: str) -> str:
    """``ITOP_BACKUP CRITICAL - message`` (no dash without a message)."""
    return f"{name} {state.upper()}{' - ' + message if message else ''}"


def nagios_text(status: str, perfdata: Sequence[str], long_lines: Sequence[str], more_lines: Sequence[str],
                logs: str, verbose: int) -> str:
    """The whole answer: *long_lines* (shown from ``-v1``) and *more_lines* (always shown) are
    the long output; *logs* the captured log records."""
    warnings: list[str] = []

    def screen(text: str, where: str) -> str:
        text = text.rstrip("\n")
        screened = text.replace(ILLEGAL, "")
        if screened != text:
            removed = ", ".join(f"0x{ord(c):x}" for c in set(text) - set(screened))
            warnings.append(f"warning: removed illegal characters ({removed}) from {where}")
        return screened

    def perfdata_text() -> str:
        return "| " + screen(" ".join(perfdata), "perfdata") if perfdata else ""

    status = screen(status, "status line")
    if verbose:
        out = [screen(line, "long output") for line in long_lines]
        late_perfdata = [perfdata_text()]
    else:
        status += f" {perfdata_text()}" if perfdata else ""
        out, late_perfdata = [], []
    out += [screen(line, "long output") for line in more_lines]
    logged = screen(logs, "logging output")
    return "\n".join(line for line in [status, *out, logged, *warnings, *late_perfdata] if line) + "\n"


def json_text(state: str, exit_code: int, message: str, archive: str | None = None,
              expected: str | None = None, metrics: dict[str, float] | None = None,
              verification: str | None = None, actions: Sequence[str] = ()) -> str:
    """One JSON object on one line (``--format json``, for Zabbix): the same keys whatever the state."""
    import json

    return json.dumps({"state": state.upper(), "exit_code": exit_code, "message": message,
                       "archive": archive, "expected": expected, "metrics": metrics or {},
                       "verification": verification, "actions": list(actions)}) + "\n"
