"""The probe's offsite part (``--offsite s3://…``): the copy of the judged archive in object storage.

Listing and HEAD requests only (offsite/store.py), no download, unless ``--verify dump``
and ``--offsite-verify-every`` ask for the copy to be verified too (streamed, its result
cached in the history at the level ``offsite``). Metrics, each judged by a context here:

* ``offsite_error`` (1): the store cannot be asked (credentials, endpoint, bucket): UNKNOWN
  for this part only, the local results stand (``ItopBackupCheck`` weighs it);
* ``offsite_missing`` (s since the judged archive was written, while it has no copy):
  WARNING after ``--offsite-grace``, CRITICAL after ``--critical-age``;
* ``offsite_age`` (s, the newest copy of the series; ``--warning-age``/``--critical-age``),
  ``offsite_size`` (B) and ``offsite_lag`` (s from the local archive to its copy): perfdata;
* ``offsite_mismatch`` (1): the copy's size or the dump SHA-256 in its metadata differ from
  the local archive and its manifest: CRITICAL;
* ``offsite_verified`` (1/0): the copy failed its verification: CRITICAL.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import nagiosplugin
from nagiosplugin.state import Critical, Ok, Unknown, Warn

from check_itop_backup import deadline
from check_itop_backup.check.contexts import Finding, Limits
from check_itop_backup.offsite.location import Location, archive_name
from check_itop_backup.units import format_duration, format_size

log = logging.getLogger(__name__)
LEVEL = "offsite"  # the verification level under which a copy's verification is cached


class OffsiteSettings(NamedTuple):
    """``--offsite`` and its options: the location, the store (StoreSettings), the grace (s),
    how often the copy is verified (s, None: never)."""

    location: Location
    store: Any
    grace: float
    verify_every: float | None = None


class OffsiteProbe:
    """What the offsite part saw, for the contexts' sentences."""

    def __init__(self, settings: OffsiteSettings) -> None:
        self.settings = settings
        self.error = ""
        self.copy_url = ""  # the judged archive's copy
        self.newest = ""  # the newest copy of the series
        self.mismatch = ""
        self.verification = ""

    def metrics(self, judged: Any, pattern: Any, now: float, history: Any, series: str,
                verify: bool) -> Iterator[nagiosplugin.Metric]:
        from check_itop_backup.offsite.store import OffsiteError, Store

        where = self.settings.location
        try:
            with deadline.current.stage(f"listing {where.url()}"):
                store = Store(self.settings.store)
                objects = _series_objects(store.list(where), pattern)
                copy = next((item for item in objects
                             if archive_name(item.key) == os.path.basename(judged.path)), None)
                head = store.head(where.bucket, copy.key) if copy else None
        except OffsiteError as error:
            self.error = str(error)
            yield nagiosplugin.Metric("offsite_error", 1, context="offsite_error")
            return
        if objects:
            newest = objects[0]
            self.newest = where.url(newest.key)
            yield nagiosplugin.Metric("offsite_age", max(0, int(now - newest.modified)), uom="s", min=0)
        if head is None:
            self.copy_url = where.url(where.key_for(os.path.basename(judged.path)))
            yield nagiosplugin.Metric("offsite_missing", max(0, int(now - judged.mtime)), uom="s", min=0)
            return
        self.copy_url = where.url(copy.key)
        metadata = head.get("Metadata", {})
        size = int(metadata.get("archive-size") or head["ContentLength"])
        yield nagiosplugin.Metric("offsite_size", size, uom="B", min=0)
        yield nagiosplugin.Metric("offsite_lag", max(0, int(copy.modified - judged.mtime)), uom="s", min=0)
        self.mismatch = _mismatch(judged, size, metadata)
        yield nagiosplugin.Metric("offsite_mismatch", int(bool(self.mismatch)), min=0, max=1)
        if verify and self.settings.verify_every is not None and not self.mismatch:
            try:
                state = self._verified(store, judged, history, series, now)
            except OSError as error:
                self.error = f"cannot verify {self.copy_url}: {error}"
                yield nagiosplugin.Metric("offsite_error", 1, context="offsite_error")
                return
            if state is not None:
                yield nagiosplugin.Metric("offsite_verified", int(state != "critical"), min=0, max=1)

    def _verified(self, store: Any, judged: Any, history: Any, series: str, now: float) -> str | None:
        """The copy's verification state, cached for ``verify_every``; None for an encrypted copy
        (its key is not on this host)."""
        from check_itop_backup.archive.inspect import verify_archive
        from check_itop_backup.offsite.download import RemoteArchive
        from check_itop_backup.offsite.store import OffsiteError

        cached = history.verification(judged.path, judged.size, judged.mtime, judged.inode, (LEVEL,))
        if cached is not None and now - cached.verified_at < self.settings.verify_every:
            self.verification = cached.message
            return cached.state
        try:
            copy = RemoteArchive(store, self.copy_url)
            report = verify_archive(copy, "dump")
        except OffsiteError as error:
            if "is encrypted" in str(error):
                log.info("%s is encrypted: verify it with itop-backup verify --identity", self.copy_url)
                return None
            raise OSError(str(error)) from None
        except ValueError as error:  # the level
            raise OSError(str(error)) from None
        self.verification = report.reason
        with deadline.current.stage(f"writing the verification to the history {history.path}"), \
                history.transaction():
            record = history.record_archive(series, judged.path, judged.size, judged.mtime, judged.inode, now)
            history.record_verification(record.id, LEVEL, report.state, report.reason,
                                        json.dumps(report.details()), now)
        return report.state


def _series_objects(objects: list, pattern: Any) -> list:
    """The objects whose name is an archive name of *pattern*, newest first."""
    glob = os.path.basename(pattern.glob)
    ours = [item for item in objects if fnmatch.fnmatchcase(archive_name(item.key), glob)]
    return sorted(ours, key=lambda item: item.modified, reverse=True)


def _mismatch(judged: Any, size: int, metadata: dict[str, str]) -> str:
    """Why the copy is not the judged archive's, or ''."""
    if size != judged.size:
        return f"is {format_size(size)} ({size} B), the local archive {judged.size} B"
    sha256 = metadata.get("dump-sha256")
    if sha256:
        from check_itop_backup.archive.inspect import read_manifest

        try:
            manifest = read_manifest(judged.path) or {}
        except OSError as error:
            return f"cannot be compared: {error.strerror}"
        dump = manifest.get("dump") if isinstance(manifest.get("dump"), dict) else {}
        if dump.get("sha256") and dump["sha256"] != sha256:
            return f"holds a dump of SHA-256 {sha256[:12]}…, the local manifest says {dump['sha256'][:12]}…"
    return ""


class OffsiteErrorContext(nagiosplugin.Context):
    """``offsite_error``: the store could not be asked: UNKNOWN, naming why."""

    def __init__(self, probe: OffsiteProbe) -> None:
        super().__init__("offsite_error", result_cls=Finding)
        self.probe = probe

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        return self.result_cls(Unknown, f"offsite copy cannot be checked: {self.probe.error}", metric)


class OffsiteMissingContext(nagiosplugin.Context):
    """``offsite_missing``: no copy of the judged archive yet: WARNING after the grace,
    CRITICAL after ``--critical-age``."""

    def __init__(self, probe: OffsiteProbe, critical_age: float | None) -> None:
        super().__init__("offsite_missing", result_cls=Finding)
        self.probe, self.critical_age = probe, critical_age

    def evaluate(self, metric: nagiosplugin.Metric, resource: object) -> nagiosplugin.Result:
        grace = self.probe.settings.grace
        if self.critical_age is not None and metric.value > self.critical_age:
            state, limit = Critical, f"more than {format_duration(self.critical_age)}"
        elif metric.value > grace:
            state, limit = Warn, f"grace {format_duration(grace)}"
        else:
            return self.result_cls(Ok, None, metric)
        return self.result_cls(state, f"no copy {self.probe.copy_url} {format_duration(metric.value)} after "
                                      f"the archive was written ({limit})", metric)


class OffsiteAgeContext(Limits):
    """``offsite_age``: the newest copy's age against ``--warning-age``/``--critical-age``."""

    perfdata = True

    def __init__(self, probe: OffsiteProbe, warning: float | None, critical: float | None) -> None:
        super().__init__("offsite_age", None if warning is None else f"{int(warning)}",
                         None if critical is None else f"{int(critical)}")
        self.probe = probe

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: object) -> str:
        return f"the newest copy {self.probe.newest} is {format_duration(metric.value)} old"


class OffsiteReport(Limits):
    """``offsite_size`` and ``offsite_lag``: perfdata only."""

    perfdata = True


class OffsiteFlagContext(Limits):
    """``offsite_mismatch`` (1 is CRITICAL) and ``offsite_verified`` (0 is CRITICAL)."""

    def __init__(self, probe: OffsiteProbe, name: str) -> None:
        super().__init__(name, critical="0" if name == "offsite_mismatch" else "1:")
        self.probe = probe

    def hint(self, metric: nagiosplugin.Metric, resource: object, state: object) -> str:
        if self.name == "offsite_mismatch":
            return f"the copy {self.probe.copy_url} {self.probe.mismatch}"
        return f"the copy {self.probe.copy_url} fails dump verification: {self.probe.verification}"


def offsite_contexts(probe: OffsiteProbe, warning_age: float | None, critical_age: float | None) -> list:
    """The contexts of the offsite metrics."""
    return [OffsiteErrorContext(probe), OffsiteMissingContext(probe, critical_age),
            OffsiteAgeContext(probe, warning_age, critical_age), OffsiteReport("offsite_size"),
            OffsiteReport("offsite_lag"), OffsiteFlagContext(probe, "offsite_mismatch"),
            OffsiteFlagContext(probe, "offsite_verified")]


def weighed_state(results: nagiosplugin.Results) -> nagiosplugin.state.ServiceState:
    """The check's state when the store could not be asked: the local results' when they are
    not OK (a CRITICAL archive stays CRITICAL), else UNKNOWN."""
    local = [r.state for r in results if r.metric is None or r.metric.name != "offsite_error"]
    worst = max(local) if local else Ok
    return worst if worst != Ok else Unknown
