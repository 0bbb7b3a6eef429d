"""Evaluation and presentation: the contexts that judge the probe's metrics, and the summary.

Every metric is a number judged against ranges (``ScalarContext``); only ``age``, ``size``,
``size_change`` and the report metrics write perfdata. No I/O. Every hint is a sentence a
person can act on, naming the archive and the values: "itop-2026-11-26.tar.gz is 30h 0m old
(more than 26h 0m)"; what a sentence needs besides the number is on the resource
(``ItopBackup``: selection, trend, mode...).
"""

from __future__ import annotations

import os
from datetime import datetime

import nagiosplugin
from nagiosplugin.performance import Performance
from nagiosplugin.state import Critical, Ok, ServiceState, Warn

from check_itop_backup.check.settings import CheckSettings
from check_itop_backup.units import format_duration, format_size


def describe_slot(slot: datetime) -> str:
    """Return e.g. ``Fri 2026-11-27 23:30``."""
    return slot.strftime("%a %Y-%m-%d %H:%M")


def _name(path: str) -> str:
    return os.path.basename(path)


class Finding(nagiosplugin.Result):
    """A result whose text is its hint alone: hints here are whole sentences."""

    def __str__(self) -> str:
        return self.hint or ""


class Limits(nagiosplugin.ScalarContext):
    """A number against a warning and a critical range, each optional (an empty nagiosplugin Range
    would be ``0:``, failing negative numbers); a result that is not OK says why in one sentence
    (``hint``). Perfdata only with ``perfdata = True``."""

    perfdata = False

    def __init__(self, name: str, warning: str | None = None, critical: str | None = None) -> None:
        super().__init__(name, warning, critical, fmt_metric=None, result_cls=Finding)
        self.limits = [(state, limit) for state, given, limit in ((Critical, critical, self.critical),
                                                                  (Warn, warning, self.warning)) if given]

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        state = next((state for state, limit in self.limits if not limit.match(metric.value)), Ok)
        return self.result_cls(state, None if state == Ok else self.hint(metric, resource, state), metric)

    def performance(self, metric: nagiosplugin.Metric, resource: object) -> Performance | None:
        return super().performance(metric, resource) if self.perfdata else None

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        """The sentence for a result that is not OK."""
        raise NotImplementedError


class MissingContext(Limits):
    """``missing``: the backup the schedule expects has no archive (1): CRITICAL."""

    def __init__(self, settings: CheckSettings) -> None:
        super().__init__("missing", critical="0")
        self.settings = settings

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        settings, selection = self.settings, resource.selection
        due = describe_slot(selection.slot)
        if selection.missing_directory:
            return f"backup directory {selection.missing_directory} does not exist"
        judged = selection.judged
        if not settings.pattern.has_time_codes:
            if judged is None:
                return f"{selection.expected} is missing"
            modified = datetime.fromtimestamp(judged.mtime, settings.timezone)
            return (f"{_name(judged.path)} is stale: last written {describe_slot(modified)}, "
                    f"before the backup due {due}")
        if settings.pattern.precision in ("day", "month", "year"):
            text = f"{_name(selection.expected)} is missing (backup due {due})"
        else:
            text = f"no archive {_name(selection.expected)} or later (backup due {due})"
        if judged is not None:
            age = settings.now.timestamp() - judged.mtime
            text += f"; newest is {_name(judged.path)}, {format_duration(age)} old"
        elif selection.in_progress is None:
            text += f"; no archive matches {settings.pattern.glob}"
        return text


def in_progress_note(settings: CheckSettings, resource: object) -> str:
    """The sentence about the archive being written: ``itop.tar.gz is still being written (12s ago)``."""
    writing = resource.selection.in_progress
    return (f"{_name(writing.path)} is still being written "
            f"({format_duration(settings.now.timestamp() - writing.mtime)} ago)")


class OverdueContext(nagiosplugin.Context):
    """``overdue``: seconds since the start of the due backup, still being written past its grace:
    WARNING, CRITICAL above ``--critical-age``."""

    def __init__(self, settings: CheckSettings) -> None:
        super().__init__("overdue", result_cls=Finding)
        self.settings = settings

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        settings = self.settings
        critical = settings.critical_age is not None and metric.value > settings.critical_age
        limit = (f"more than {format_duration(settings.critical_age)}" if critical
                 else f"grace {format_duration(settings.grace.total_seconds())}")
        hint = (f"{in_progress_note(settings, resource)}, {format_duration(metric.value)} after the "
                f"backup due {describe_slot(resource.selection.overdue_slot)} ({limit})")
        return self.result_cls(Critical if critical else Warn, hint, metric)


class AgeContext(Limits):
    """How old the judged archive is, against ``--warning-age``/``--critical-age``."""

    perfdata = True

    def __init__(self, warning: float | None, critical: float | None) -> None:
        super().__init__("age", _upper(warning), _upper(critical))
        self.seconds = {Warn: warning, Critical: critical}

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        return (f"{_name(resource.selection.judged.path)} is {format_duration(metric.value)} old "
                f"(more than {format_duration(self.seconds[state])})")


class SizeContext(Limits):
    """The judged archive's size: 0 bytes or not above ``--size-min`` is CRITICAL (iTop's rule)."""

    perfdata = True

    def __init__(self, size_min: int) -> None:
        super().__init__("size", critical=f"{size_min + 1}:")
        self.size_min = size_min

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        name = _name(resource.selection.judged.path)
        if metric.value == 0:
            return f"{name} is empty (0 bytes)"
        return (f"{name} is {format_size(metric.value)} ({metric.value} B), "
                f"not above the {self.size_min} B minimum")


class SizeChangeContext(Limits):
    """``size_change``: the size against the median of earlier good archives, in percent, judged
    by ranges for shrinking and growing (``-20:100`` warns below -20 % or above +100 %)."""

    perfdata = True

    def __init__(self, warning: str, critical: str) -> None:
        super().__init__("size_change", warning, critical)

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        trend = resource.trend
        return (f"size {format_size(trend.size)} is {metric.value:+.0f}% vs median "
                f"{format_size(trend.baseline)} of the last {trend.samples} backups")


class ReductionContext(Limits):
    """``size_reduction``: iTop's ``check_size_reduction_max``, CRITICAL when the archive is more
    than the limit (percent) smaller than the previous archive (whatever that one's verdict)."""

    def __init__(self, limit: float | None) -> None:
        super().__init__("size_reduction", critical=None if limit is None else f"~:{limit}")
        self.limit = limit

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        return (f"{_name(resource.selection.judged.path)} is {metric.value:.0f}% smaller than "
                f"{_name(resource.previous)} (check_size_reduction_max {self.limit:g}%)")


class RetentionContext(Limits):
    """``retention_missing``: archives iTop's ``retention_count`` keeps that are not there: WARNING."""

    def __init__(self) -> None:
        super().__init__("retention_missing", warning="0")

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        found, expected = resource.retention
        return f"{expected} archives expected (retention), {found} found"


class ExposureContext(Limits):
    """``world_readable``: an archive every local user can read gives away the database password
    of the config-itop.php it holds (iTop writes its archives 0644): WARNING."""

    def __init__(self) -> None:
        super().__init__("world_readable", warning="0")

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        return (f"{_name(resource.selection.judged.path)} is world-readable (mode {resource.mode:04o}) "
                "and an iTop archive holds the database password (config-itop.php): chmod o-r")


class LeftoversContext(Limits):
    """``leftovers``: what killed restores left and this run could not clean (maintenance mode,
    staged files holding the password, scratch databases): WARNING, naming it."""

    def __init__(self) -> None:
        super().__init__("leftovers", warning="0")

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        return "; ".join(resource.leftovers)


class VerifiedContext(Limits):
    """``verified``: the deep verification (``--verify``) passed (1) or not (0, CRITICAL with the reason)."""

    def __init__(self) -> None:
        super().__init__("verified", critical="1:")

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        verification = resource.verification
        return (f"{_name(resource.selection.judged.path)} fails {verification.level} verification: "
                f"{verification.reason}")


class VerificationWarningsContext(Limits):
    """``verification_warnings``: what iTop's restore would stumble on, tables gone since the
    previous archive or missing against the live database: WARNING."""

    def __init__(self) -> None:
        super().__init__("verification_warnings", warning="0")

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: ServiceState) -> str:
        return f"{_name(resource.selection.judged.path)}: {'; '.join(resource.verification.warnings)}"


class TableRowsContext(nagiosplugin.Context):
    """``rows_<table>``: a ``--table-shrink`` table's rows against the median of the previous
    verified archives (tabledrift.py): WARNING when it shrank by more than
    ``--table-shrink-warning`` (5 %), CRITICAL by more than ``--table-shrink-critical`` (20 %) or
    when it vanished from the dump. Perfdata for each."""

    def __init__(self) -> None:
        super().__init__("table_rows", result_cls=Finding)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        limits = resource.verifier.settings
        drift = resource.drift[metric.name]
        if not drift.vanished and (drift.change is None or drift.change >= -limits.shrink_warning):
            return self.result_cls(Ok, None, metric)
        name = _name(resource.selection.judged.path)
        baseline = (f"median {drift.baseline:g} rows of the last {drift.samples} verified "
                    f"archive{'s' * (drift.samples != 1)}")
        if drift.vanished:
            return self.result_cls(Critical, f"{name}: table {drift.table} vanished from the dump "
                                             f"({baseline})", metric)
        state = Critical if drift.change < -limits.shrink_critical else Warn
        return self.result_cls(state, f"{name}: table {drift.table} has {drift.rows} rows, "
                                      f"{drift.change:+.0f}% vs {baseline}", metric)

    def performance(self, metric: nagiosplugin.Metric, resource: object) -> Performance:
        return Performance(metric.name, metric.value, "", None, None, 0, None)


class PortabilityContext(nagiosplugin.Context):
    """``portability_<kind>`` (``--portable``): what keeps the dump from loading into another
    server or client (archive/portability.py): WARNING, one sentence each, naming who refuses it."""

    def __init__(self) -> None:
        super().__init__("portability", result_cls=Finding)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        return self.result_cls(Warn, f"{_name(resource.selection.judged.path)}: "
                                     f"{resource.portability[metric.name]}", metric)


class ReportContext(nagiosplugin.ScalarContext):
    """Perfdata only (baseline, size_z, history): always OK, no thresholds."""

    def __init__(self) -> None:
        super().__init__("report", fmt_metric=None)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        return self.result_cls(Ok, None, metric)


def _upper(limit: float | None) -> str | None:
    return None if limit is None else f"{int(limit)}"


class ItopBackupSummary(nagiosplugin.Summary):
    """The status line: what was judged, and why it is not OK when it is not."""

    def __init__(self, resource: object) -> None:
        self.resource = resource
        self.settings: CheckSettings = resource.settings

    def ok(self, results: nagiosplugin.Results) -> str:
        resource = self.resource
        judged = resource.selection.judged
        if judged is None:  # the only archive is being written
            return in_progress_note(self.settings, resource)
        text = (f"{_name(judged.path)}: {format_duration(results['age'].metric.value)} old, "
                f"{format_size(judged.size)}")
        if resource.learning is not None:
            text += f", learning size history ({resource.learning.samples}/{resource.learning.needed})"
        elif resource.trend is not None:
            text += f", {resource.trend.change:+.0f}% vs median of {resource.trend.samples}"
        if resource.verification is not None:
            verified = datetime.fromtimestamp(resource.verification.verified_at, self.settings.timezone)
            text += f", {resource.verification.reached} level verified {describe_slot(verified)}"
        if resource.offsite is not None and "offsite_lag" in results:
            text += f", copied to {resource.offsite.copy_url}"
        return self._with_progress(results, text)

    def problem(self, results: nagiosplugin.Results) -> str:
        ranked = sorted((r for r in results if r.state != Ok), key=lambda r: -r.state.code)
        missing = "missing" in results and results["missing"].state != Ok
        texts = []
        for result in ranked:
            name = result.metric.name if result.metric is not None else None
            if name == "overdue" and missing:
                continue  # said with the missing archive
            text = str(result)
            if name == "missing" and self.resource.selection.in_progress is not None:
                text = f"{self._writing(results)}; {text}"
            texts.append(text)
        if all(r.metric is not None and r.metric.name == "offsite_error" for r in ranked) \
                and self.resource.selection.judged is not None:
            texts.append(self.ok(results))  # the store could not be asked: the local verdict stands
        return self._with_progress(results, "; ".join(texts))

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        selection = self.resource.selection
        if selection is None:
            return []
        settings = self.settings
        lines = [
            f"pattern: {settings.pattern.pattern} (timezone {settings.timezone_name})",
            f"schedule: {settings.schedule.describe()}, grace "
            f"{format_duration(settings.grace.total_seconds())}; expected the backup of "
            f"{describe_slot(selection.slot)}: {selection.expected}",
            f"archives of this pattern on disk: {len(selection.archives)}",
        ]
        if selection.judged:
            lines.append(f"judged: {selection.judged.path}")
        if self.resource.scheduler is not None:
            lines.append(self.resource.scheduler.describe())
        verification = self.resource.verification
        if verification is not None and verification.installation:
            from check_itop_backup.itop.modules import Installation

            installation = Installation(**verification.installation)
            lines.append(f"taken from {installation.describe(len(installation.modules))}")
        for drift in verification.drift if verification is not None else ():
            rows = "vanished" if drift.vanished else f"{drift.rows} rows"
            against = f", median {drift.baseline:g} of {drift.samples}" if drift.samples else ""
            lines.append(f"table {drift.table}: {rows}{against}")
        return lines

    def _writing(self, results: nagiosplugin.Results) -> str:
        """The line about what is being written: the overdue result's, else the note."""
        if "overdue" in results:
            return results["overdue"].hint
        return in_progress_note(self.settings, self.resource)

    def _with_progress(self, results: nagiosplugin.Results, text: str) -> str:
        """Put the note about what is being written first when it is no problem (a problem's line
        already says it); say last that iTop's scheduler could not be read (``--itop-cron``)."""
        scheduler = getattr(self.resource, "scheduler", None)
        if scheduler is not None and scheduler.error:
            text += f"; iTop's scheduler UNKNOWN: {scheduler.error}"
        selection = self.resource.selection
        if (selection is None or selection.in_progress is None or "overdue" in results
                or results["missing"].state != Ok):
            return text
        previous = "previous archive " if selection.judged else ""
        return f"{in_progress_note(self.settings, self.resource)}; {previous}{text}"
