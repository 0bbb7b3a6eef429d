"""The check's and the runner's answer as Prometheus reads it (node_exporter's textfile collector).

Metric families in base units (``_seconds``, ``_bytes``, ``_ratio``, ``_timestamp_seconds``,
``_total``), every sample labelled ``itop_instance`` (``--instance``; not ``instance``, which
Prometheus sets to the scraped target). The families come from a collector registered in its
own ``prometheus_client`` registry, rendered by ``generate_latest`` or written by
``write_to_textfile`` (a temporary file in the same directory, then a rename: a reader sees the
old file or the new one, never half of one). Imported only with ``--format prometheus`` or
``--prometheus-textfile``: prometheus_client is not loaded by the plain probe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from check_itop_backup.cli.outcome import Outcome
from check_itop_backup.history import RunRecord

LABEL = "itop_instance"
CHECK_PREFIX = "itop_backup_"
RUN_PREFIX = "itop_backup_run_"
RUN_STATUSES = ("ok", "failed")

# nagiosplugin's unit -> (the base unit's name suffix, factor to the base unit)
UNITS = {"s": ("_seconds", 1.0), "B": ("_bytes", 1.0), "%": ("_ratio", 0.01)}
# the check's metrics (check/resource.py): family name without prefix and unit, help text
CHECK_METRICS = {
    "missing": ("missing", "1 when the backup the schedule expects has no archive"),
    "overdue": ("overdue", "time since the start of the due backup, still being written past its grace"),
    "leftovers": ("leftovers", "what killed restores left in the iTop root and could not be cleaned"),
    "age": ("age", "age of the judged archive (since it was last written)"),
    "size": ("size", "size of the judged archive"),
    "world_readable": ("world_readable", "1 when every local user can read the judged archive"),
    "size_change": ("size_change", "size change against the baseline (0.1 = +10 %)"),
    "baseline": ("baseline", "median size of the earlier archives not judged CRITICAL"),
    "size_z": ("size_z", "robust z-score of the size against the earlier archives"),
    "history": ("history_archives", "archives of this pattern the history has recorded"),
    "size_reduction": ("size_reduction", "how much smaller than the previous archive (iTop's rule)"),
    "retention_missing": ("retention_missing", "archives the retention keeps that are not on disk"),
    "verified": ("verified", "1 when the judged archive passed its deep verification"),
    "verification_warnings": ("verification_warnings", "warnings of the deep verification"),
    # --offsite (check/offsite.py)
    "offsite_error": ("offsite_error", "1 when the object storage holding the copies cannot be asked"),
    "offsite_missing": ("offsite_missing", "time since the judged archive was written, while it has no copy"),
    "offsite_age": ("offsite_age", "age of the newest copy in object storage"),
    "offsite_size": ("offsite_size", "size of the judged archive's copy (of the archive, when encrypted)"),
    "offsite_lag": ("offsite_lag", "time from the judged archive to its copy"),
    "offsite_mismatch": ("offsite_mismatch", "1 when the copy's size or dump SHA-256 differ from the local"),
    "offsite_verified": ("offsite_verified", "1 when the copy passed its dump verification"),
}


class _Families:
    """A prometheus_client collector yielding fixed families (built before it is registered)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _registry(families: Iterable[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry


def _gauge(name: str, documentation: str, instance: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[LABEL])
    family.add_metric([instance], value)
    return family


def check_families(outcome: Outcome) -> list[Metric]:
    """The families of one check: state, info, each measured metric in base units, the judged
    archive's modification time and, with ``--verify restore``, the newest test restore."""
    instance = outcome.instance
    families = [_gauge(f"{CHECK_PREFIX}state", "the check's state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
                       instance, outcome.state)]
    if outcome.expected is not None:  # the check got as far as the schedule
        info = GaugeMetricFamily(f"{CHECK_PREFIX}info", "the archive judged (none: empty) and the archive "
                                 "expected (value 1)", labels=[LABEL, "archive", "expected"])
        info.add_metric([instance, outcome.archive or "", outcome.expected], 1)
        families.append(info)
    for metric in outcome.metrics:
        suffix, factor = UNITS.get(metric.uom, ("", 1.0))
        name, documentation = CHECK_METRICS.get(metric.name,
                                                (metric.name, f"the check's {metric.name} metric"))
        families.append(_gauge(f"{CHECK_PREFIX}{name}{suffix}", documentation, instance,
                               metric.value * factor))
    if outcome.archive_mtime is not None:
        families.append(_gauge(f"{CHECK_PREFIX}archive_timestamp_seconds",
                               "when the judged archive was last written", instance, outcome.archive_mtime))
    test = outcome.restore_test
    if test is not None:
        families.append(_gauge(f"{CHECK_PREFIX}restore_test_timestamp_seconds",
                               "when the newest test restore of the series ran", instance, test.verified_at))
        families.append(_gauge(f"{CHECK_PREFIX}restore_test_success",
                               "1 when the newest test restore of the series passed", instance,
                               int(test.state != "critical")))
    return families


def run_families(instance: str, counts: dict[str, int], last: RunRecord | None,
                 last_ok: RunRecord | None) -> list[Metric]:
    """The families of the runner after a run: its newest run (*last*), its newest good run
    (*last_ok*; 0 when there was none) and the runs by status, all read from the history."""
    families = []
    if last is not None:
        families += [
            _gauge(f"{RUN_PREFIX}last_run_timestamp_seconds", "when the newest run ended", instance,
                   last.finished or last.started),
            _gauge(f"{RUN_PREFIX}last_run_status", "the newest run's outcome: 0 archive made, 1 failed",
                   instance, int(last.status != "ok")),
            _gauge(f"{RUN_PREFIX}last_run_duration_seconds", "how long the newest run took", instance,
                   (last.finished or last.started) - last.started),
        ]
    families.append(_gauge(f"{RUN_PREFIX}last_success_timestamp_seconds",
                           "when the newest run that made an archive ended (0: none yet)", instance,
                           (last_ok.finished or last_ok.started) if last_ok else 0))
    families.append(_gauge(f"{RUN_PREFIX}last_archive_size_bytes",
                           "size of the archive the newest good run made (0: none yet)", instance,
                           last_ok.size or 0 if last_ok else 0))
    runs = CounterMetricFamily(f"{RUN_PREFIX}runs", "runs recorded in the history, by status",
                               labels=[LABEL, "status"])
    for status in RUN_STATUSES:
        runs.add_metric([instance, status], counts.get(status, 0))
    families.append(runs)
    return families


def exposition(families: Iterable[Metric]) -> str:
    """The families in Prometheus' text exposition format."""
    return generate_latest(_registry(families)).decode("utf-8")


def write_textfile(path: str, families: Iterable[Metric]) -> None:
    """Write the families to *path* atomically (temporary file beside it, then rename); raise OSError."""
    write_to_textfile(path, _registry(families))
