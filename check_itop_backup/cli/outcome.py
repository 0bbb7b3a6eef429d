"""What the Prometheus and Checkmk formats tell, read once from the finished check.

``outcome_of(check, instance)`` turns a finished ``ItopBackupCheck`` into an ``Outcome`` of plain
values: the state (0-3), the status line's text, every measured metric with its unit and its
thresholds, the judged and expected archive, and with ``--verify restore`` the newest test
restore of the series. ``unknown_outcome`` is the same for a check that could not tell (bad
options, a timeout). ``machine_answer`` renders it (cli/prometheus.py, cli/checkmk.py) and
``write_textfile`` writes ``--prometheus-textfile``. Imported only for those formats and that
option: the plain probe never loads it.
"""

from __future__ import annotations

from typing import NamedTuple

import nagiosplugin

from check_itop_backup.history import VerificationRecord


class Measured(NamedTuple):
    """One metric of the check: ``uom`` is nagiosplugin's (``s``, ``B``, ``%`` or ``""``);
    ``limits`` are the (state code, nagiosplugin Range) its context judges it by."""

    name: str
    value: float
    uom: str
    limits: tuple[tuple[int, nagiosplugin.Range], ...] = ()


class Outcome(NamedTuple):
    """The check's answer in plain values, labelled by *instance* (``--instance``)."""

    instance: str
    state: int
    text: str
    now: float  # when the check ran (``--now`` replays a past moment)
    metrics: tuple[Measured, ...] = ()
    archive: str | None = None
    expected: str | None = None
    archive_mtime: float | None = None
    restore_test: VerificationRecord | None = None
    restore_every: float | None = None  # seconds, with --verify restore
    details: tuple[str, ...] = ()


def outcome_of(check: nagiosplugin.Check, instance: str) -> Outcome:
    """The Outcome of a finished check (the first resource is the ItopBackup)."""
    resource = check.resources[0]
    selection = resource.selection
    judged = selection.judged if selection else None
    metrics = tuple(_measured(result) for result in check.results.results if result.metric is not None)
    verifier = resource.verifier
    restore = verifier is not None and verifier.settings.level == "restore"
    return Outcome(
        instance=instance, state=check.exitcode, text=check.summary_str.strip(),
        now=resource.settings.now.timestamp(), metrics=metrics,
        archive=judged.path if judged else None, expected=selection.expected if selection else None,
        archive_mtime=judged.mtime if judged else None, restore_test=resource.restore_test,
        restore_every=verifier.settings.restore_every if restore else None,
        details=tuple(check.action_lines))


def unknown_outcome(instance: str, message: str, restore_every: float | None = None) -> Outcome:
    """The Outcome of a check that could not tell why (UNKNOWN with *message*)."""
    import time

    return Outcome(instance=instance, state=3, text=message, now=time.time(), restore_every=restore_every)


def _measured(result: nagiosplugin.Result) -> Measured:
    metric = result.metric
    limits = getattr(result.context, "limits", ())  # check/contexts.py's Limits: only the given ranges
    return Measured(metric.name, metric.value, metric.uom or "",
                    tuple((state.code, limit) for state, limit in limits))


def machine_answer(output_format: str, outcome: Outcome) -> str:
    """The Prometheus exposition (``prometheus``) or the Checkmk lines (``checkmk``) of *outcome*."""
    if output_format == "prometheus":
        from check_itop_backup.cli.prometheus import check_families, exposition

        return exposition(check_families(outcome))
    from check_itop_backup.cli.checkmk import local_check_lines

    return local_check_lines(outcome)


def write_textfile(path: str | None, outcome: Outcome) -> str:
    """Write *outcome*'s Prometheus families to *path* (``--prometheus-textfile``; nothing for None);
    return the line saying why it could not be written, else "": the check's answer stays as it is."""
    if not path:
        return ""
    from check_itop_backup.cli.prometheus import check_families
    from check_itop_backup.cli.prometheus import write_textfile as write_families

    try:
        write_families(path, check_families(outcome))
    except OSError as error:
        return f"warning: cannot write the Prometheus textfile {path}: {error.strerror or error}\n"
    return ""
