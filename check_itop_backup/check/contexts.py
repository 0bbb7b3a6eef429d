"""Evaluation and presentation: the contexts that judge the probe's metrics, and the summary.

No I/O. Every hint is a sentence a person can act on, naming the archive and the values:
"itop-2026-11-26.tar.gz is 30h 0m old (more than 26h 0m)".
"""

from __future__ import annotations

import os
from datetime import datetime

import nagiosplugin
from nagiosplugin.performance import Performance
from nagiosplugin.state import Critical, Ok, ServiceState, Warn

from check_itop_backup.check.finder import Selection
from check_itop_backup.check.resource import Learning
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


class ArchiveContext(nagiosplugin.Context):
    """Is there an archive for the backup the schedule expects?"""

    def __init__(self, settings: CheckSettings) -> None:
        super().__init__("archive", result_cls=Finding)
        self.settings = settings

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        """OK, or CRITICAL when the due backup is missing; what is being written is never
        missing: OK inside its window, WARNING past its grace, CRITICAL past --critical-age."""
        selection: Selection = metric.value
        writing = self.writing(selection)
        if (selection.judged is not None and selection.on_time) or (writing and selection.judged is None):
            return self.result_cls(*(writing or (Ok, None)), metric)
        missing = self.missing(selection)
        return self.result_cls(Critical, f"{writing[1]}; {missing}" if writing else missing, metric)

    def writing(self, selection: Selection) -> tuple[ServiceState, str] | None:
        """The state and line of what is being written, or None."""
        writing = selection.in_progress
        if writing is None:
            return None
        settings = self.settings
        now = settings.now.timestamp()
        note = f"{_name(writing.path)} is still being written ({format_duration(now - writing.mtime)} ago)"
        if selection.overdue_slot is None:
            return Ok, note
        overdue = now - settings.to_epoch(selection.overdue_slot)
        critical = settings.critical_age is not None and overdue > settings.critical_age
        limit = (f"more than {format_duration(settings.critical_age)}" if critical
                 else f"grace {format_duration(settings.grace.total_seconds())}")
        return (Critical if critical else Warn), (
            f"{note}, {format_duration(overdue)} after the backup due "
            f"{describe_slot(selection.overdue_slot)} ({limit})")

    def missing(self, selection: Selection) -> str:
        settings = self.settings
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


class AgeContext(nagiosplugin.ScalarContext):
    """How old the judged archive is, against ``--warning-age``/``--critical-age``."""

    def __init__(self, warning: float | None, critical: float | None) -> None:
        super().__init__("age", _upper(warning), _upper(critical), result_cls=Finding)
        self.limits = {"warning": warning, "critical": critical}

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        result = super().evaluate(metric, resource)
        if result.state == Ok:
            return result
        limit = self.limits["critical" if result.state == Critical else "warning"]
        hint = (f"{_name(resource.selection.judged.path)} is {format_duration(metric.value)} old "
                f"(more than {format_duration(limit)})")
        return self.result_cls(result.state, hint, metric)


class SizeContext(nagiosplugin.ScalarContext):
    """The judged archive's size: 0 bytes or not above ``--size-min`` is CRITICAL (iTop's rule)."""

    def __init__(self, size_min: int) -> None:
        super().__init__("size", None, f"{size_min + 1}:", result_cls=Finding)
        self.size_min = size_min

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        result = super().evaluate(metric, resource)
        if result.state == Ok:
            return result
        name = _name(resource.selection.judged.path)
        if metric.value == 0:
            return self.result_cls(Critical, f"{name} is empty (0 bytes)", metric)
        hint = (f"{name} is {format_size(metric.value)} ({metric.value} B), "
                f"not above the {self.size_min} B minimum")
        return self.result_cls(Critical, hint, metric)


class TrendContext(nagiosplugin.Context):
    """The size against the median of earlier good archives, as a percent change judged by
    separate ranges for shrinking and growing (``-20:100`` warns below -20 % or above +100 %)."""

    def __init__(self, warning: str, critical: str) -> None:
        super().__init__("trend", result_cls=Finding)
        self.warning, self.critical = nagiosplugin.Range(warning), nagiosplugin.Range(critical)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        trend = metric.value
        if isinstance(trend, Learning):
            return self.result_cls(Ok, f"learning size history ({trend.samples}/{trend.needed})", metric)
        change = round(trend.change, 1)
        state = Critical if not self.critical.match(change) else (
            Warn if not self.warning.match(change) else Ok)
        hint = (f"size {format_size(trend.size)} is {change:+.0f}% vs median "
                f"{format_size(trend.baseline)} of the last {trend.samples} backups")
        return self.result_cls(state, hint, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: object) -> Performance | None:
        if isinstance(metric.value, Learning):
            return None
        return Performance("size_change", round(metric.value.change, 1), "%",
                           self.warning, self.critical)


class ReportContext(nagiosplugin.Context):
    """Perfdata only (baseline, size_z, history): always OK, no thresholds."""

    def __init__(self) -> None:
        super().__init__("report")

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        return self.result_cls(Ok, None, metric)

    def performance(self, metric: nagiosplugin.Metric, resource: object) -> Performance:
        return Performance(metric.name, metric.value, metric.uom, min=metric.min)


class ReductionContext(nagiosplugin.Context):
    """iTop's ``check_size_reduction_max``: CRITICAL when the archive shrank by more than the
    limit against the previous archive (whatever that one's verdict)."""

    def __init__(self, limit: float | None) -> None:
        super().__init__("size_reduction", result_cls=Finding)
        self.limit = limit

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        change, previous = metric.value
        if change >= -self.limit:
            return self.result_cls(Ok, None, metric)
        hint = (f"{_name(resource.selection.judged.path)} is {-change:.0f}% smaller than "
                f"{_name(previous)} (check_size_reduction_max {self.limit:g}%)")
        return self.result_cls(Critical, hint, metric)


class RetentionContext(nagiosplugin.Context):
    """All archives iTop's ``retention_count`` keeps should be there."""

    def __init__(self) -> None:
        super().__init__("retention", result_cls=Finding)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        found, expected = metric.value
        if found >= expected:
            return self.result_cls(Ok, None, metric)
        return self.result_cls(Warn, f"{expected} archives expected (retention), {found} found", metric)


class ExposureContext(nagiosplugin.Context):
    """An archive every local user can read gives away the database password of the
    config-itop.php it holds (iTop writes its archives 0644): WARNING."""

    def __init__(self) -> None:
        super().__init__("exposure", result_cls=Finding)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        if metric.value is None:
            return self.result_cls(Ok, None, metric)
        hint = (f"{_name(resource.selection.judged.path)} is world-readable (mode {metric.value:04o}) "
                "and an iTop archive holds the database password (config-itop.php): chmod o-r")
        return self.result_cls(Warn, hint, metric)


class LeftoversContext(nagiosplugin.Context):
    """What a killed restore left and this run could not clean (maintenance mode, staged files
    holding the password, scratch databases): WARNING, naming it."""

    def __init__(self) -> None:
        super().__init__("leftovers", result_cls=Finding)

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        return self.result_cls(Warn if metric.value else Ok, metric.value, metric)


class VerificationContext(nagiosplugin.Context):
    """The deep verification (``--verify``): CRITICAL with the reason when the archive fails;
    WARNING for what iTop's restore would stumble on, or tables gone since the previous archive."""

    def __init__(self, settings: CheckSettings) -> None:
        super().__init__("verification", result_cls=Finding)
        self.settings = settings

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        verification = metric.value
        name = _name(resource.selection.judged.path)
        if verification.state == "critical":
            hint = f"{name} fails {verification.level} verification: {verification.reason}"
            return self.result_cls(Critical, hint, metric)
        problems = [verification.reason] if verification.state == "warning" else []
        if problems or verification.findings:
            return self.result_cls(Warn, f"{name}: {'; '.join(problems + list(verification.findings))}",
                                   metric)
        verified = datetime.fromtimestamp(verification.verified_at, self.settings.timezone)
        return self.result_cls(Ok, f"{verification.reached} level verified {describe_slot(verified)}", metric)


def _upper(limit: float | None) -> str | None:
    return None if limit is None else f"{int(limit)}"


class ItopBackupSummary(nagiosplugin.Summary):
    """The status line: what was judged, and why it is not OK when it is not."""

    def __init__(self, settings: CheckSettings) -> None:
        self.settings = settings

    def ok(self, results: nagiosplugin.Results) -> str:
        selection: Selection = results["archive"].metric.value
        judged = selection.judged
        if judged is None:  # the only archive is being written
            return results["archive"].hint
        text = (f"{_name(judged.path)}: {format_duration(results['age'].metric.value)} old, "
                f"{format_size(judged.size)}")
        if "trend" in results:
            trend = results["trend"].metric.value
            text += (f", {results['trend'].hint}" if isinstance(trend, Learning)
                     else f", {trend.change:+.0f}% vs median of {trend.samples}")
        if "verification" in results:
            text += f", {results['verification'].hint}"
        return self._with_progress(results, text)

    def problem(self, results: nagiosplugin.Results) -> str:
        ranked = sorted((r for r in results if r.state != Ok), key=lambda r: -r.state.code)
        return self._with_progress(results, "; ".join(str(r) for r in ranked))

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        if "archive" not in results:
            return []
        selection: Selection = results["archive"].metric.value
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
        return lines

    @staticmethod
    def _with_progress(results: nagiosplugin.Results, text: str) -> str:
        """Put the line about what is being written first, when the archive result is OK (a
        problem's line already says it)."""
        archive = results["archive"] if "archive" in results else None
        if archive is None or archive.state != Ok or not archive.hint:
            return text
        previous = "previous archive " if archive.metric.value.judged else ""
        return f"{archive.hint}; {previous}{text}"
