"""The contexts of check/contexts.py: the state and the sentence each gives a number, at and
around its thresholds, and which of them write perfdata."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import nagiosplugin
import pytest
from nagiosplugin.state import Critical, Ok, Warn

from check_itop_backup.check.contexts import (
    AgeContext,
    ExposureContext,
    ItopBackupSummary,
    LeftoversContext,
    MissingContext,
    OverdueContext,
    ReductionContext,
    ReportContext,
    RetentionContext,
    SizeChangeContext,
    SizeContext,
    VerificationWarningsContext,
    VerifiedContext,
)
from check_itop_backup.check.finder import ArchiveFile, Selection
from check_itop_backup.check.trend import SizeTrend
from check_itop_backup.check.verification import Verification
from check_itop_backup.itop.naming import NamePattern

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=PARIS)
DUE = datetime(2026, 11, 27, 23, 30)  # iTop's wall clock
JUDGED = ArchiveFile("/b/itop-2026-11-26.tar.gz", 1000, (NOW - timedelta(days=1, hours=10)).timestamp(), 1,
                     datetime(2026, 11, 26))
WRITING = ArchiveFile("/b/itop-2026-11-27.tar.gz", 10, (NOW - timedelta(seconds=12)).timestamp(), 2,
                      datetime(2026, 11, 27))


def settings(critical_age: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(now=NOW, timezone=PARIS, grace=timedelta(hours=2), critical_age=critical_age,
                           pattern=NamePattern("/b/itop-%Y-%m-%d.tar.gz"))


def selection(judged: ArchiveFile | None = JUDGED, in_progress: ArchiveFile | None = None,
              overdue_slot: datetime | None = None) -> Selection:
    return Selection(slot=DUE, expected="/b/itop-2026-11-27.tar.gz", archives=[JUDGED], judged=judged,
                     in_progress=in_progress, on_time=False, missing_directory=None,
                     overdue_slot=overdue_slot)


VERIFIED = Verification(level="dump", reached="dump", state="ok", reason="fine", verified_at=NOW.timestamp(),
                        cached=False, tables=("t",))
RESOURCE = SimpleNamespace(selection=selection(), trend=SizeTrend(800, 1000.0, -20.0, -3.0, 7), mode=0o644,
                           leftovers=["maintenance mode left on", "a scratch database left"],
                           previous="/b/itop-2026-11-25.tar.gz", retention=(3, 4), verification=VERIFIED)


def judge_result(context: nagiosplugin.Context, value: float,
                 resource: object = RESOURCE) -> nagiosplugin.Result:
    return context.evaluate(nagiosplugin.Metric(context.name, value), resource)


def judge(context: nagiosplugin.Context, value: float, resource: object = RESOURCE) -> tuple:
    """The state and hint *context* gives *value*."""
    result = judge_result(context, value, resource)
    return result.state, result.hint


def perfdata(context: nagiosplugin.Context, value: float, uom: str | None = None,
             minimum: float | None = 0) -> str | None:
    performance = context.performance(nagiosplugin.Metric(context.name, value, uom, min=minimum), RESOURCE)
    return None if performance is None else str(performance)


def test_missing_is_critical_at_one_naming_the_expected_archive_and_the_newest():
    context = MissingContext(settings())

    assert judge(context, 0) == (Ok, None)
    assert judge(context, 1) == (Critical, "itop-2026-11-27.tar.gz is missing (backup due Fri 2026-11-27 "
                                           "23:30); newest is itop-2026-11-26.tar.gz, 1d 10h old")
    empty = SimpleNamespace(selection=selection(judged=None))
    assert judge(context, 1, empty)[1] == ("itop-2026-11-27.tar.gz is missing (backup due Fri 2026-11-27 "
                                           "23:30); no archive matches /b/itop-*-*-*.tar.gz")


@pytest.mark.parametrize("critical_age, seconds, state, limit", [
    (None, 10 ** 6, Warn, "grace 2h 0m"),
    (9000, 9000, Warn, "grace 2h 0m"),
    (9000, 9001, Critical, "more than 2h 30m"),
])
def test_overdue_is_a_warning_past_the_grace_and_critical_past_the_critical_age(critical_age, seconds,
                                                                                 state, limit):
    resource = SimpleNamespace(selection=selection(in_progress=WRITING, overdue_slot=DUE))

    found_state, hint = judge(OverdueContext(settings(critical_age)), seconds, resource)

    assert found_state == state
    assert hint.startswith("itop-2026-11-27.tar.gz is still being written (12s ago), ")
    assert hint.endswith(f"after the backup due Fri 2026-11-27 23:30 ({limit})")


@pytest.mark.parametrize("age, state", [(93600, Ok), (93601, Warn), (172800, Warn), (172801, Critical)])
def test_age_against_the_warning_and_critical_ages(age, state):
    found_state, hint = judge(AgeContext(93600, 172800), age)

    assert found_state == state
    limit = {Ok: None, Warn: "1d 2h", Critical: "2d 0h"}[state]
    assert hint is None or hint.endswith(f"old (more than {limit})")


def test_age_writes_perfdata_with_its_thresholds_and_none_without():
    assert perfdata(AgeContext(93600, 172800), 30360, "s") == "age=30360s;93600;172800;0"
    assert perfdata(AgeContext(None, None), 30360, "s") == "age=30360s;;;0"
    assert judge(AgeContext(None, None), 10 ** 9) == (Ok, None)


@pytest.mark.parametrize("size, state, hint", [
    (101, Ok, None),
    (100, Critical, "itop-2026-11-26.tar.gz is 100 B (100 B), not above the 100 B minimum"),
    (0, Critical, "itop-2026-11-26.tar.gz is empty (0 bytes)"),
])
def test_size_must_be_above_the_minimum(size, state, hint):
    assert judge(SizeContext(100), size) == (state, hint)


def test_size_writes_perfdata_with_its_minimum_as_the_critical_range():
    assert perfdata(SizeContext(0), 1000, "B") == "size=1000B;;1:;0"


@pytest.mark.parametrize("change, state", [(-20, Ok), (-20.1, Warn), (100, Ok), (100.1, Warn),
                                           (-50, Warn), (-50.1, Critical), (300, Warn), (300.1, Critical)])
def test_size_change_against_a_shrinking_and_a_growing_bound(change, state):
    found_state, hint = judge(SizeChangeContext("-20:100", "-50:300"), change)

    assert found_state == state
    assert hint == (None if state == Ok else f"size 800 B is {change:+.0f}% vs median 1000 B of the last 7 "
                                             "backups")


def test_size_change_writes_perfdata_with_both_ranges():
    assert perfdata(SizeChangeContext("-20:100", "-50:300"), -42.1, "%", None) == \
        "size_change=-42.1%;-20:100;-50:300"


@pytest.mark.parametrize("reduction, state", [(-300, Ok), (0, Ok), (10, Ok), (10.4, Critical),
                                              (100, Critical)])
def test_size_reduction_is_critical_above_the_limit_and_growth_is_fine(reduction, state):
    found_state, hint = judge(ReductionContext(10), reduction)

    assert found_state == state
    assert hint == (None if state == Ok else f"itop-2026-11-26.tar.gz is {reduction:.0f}% smaller than "
                                             "itop-2026-11-25.tar.gz (check_size_reduction_max 10%)")


@pytest.mark.parametrize("context, warning", [
    (RetentionContext(), "4 archives expected (retention), 3 found"),
    (ExposureContext(), "itop-2026-11-26.tar.gz is world-readable (mode 0644) and an iTop archive holds "
                        "the database password (config-itop.php): chmod o-r"),
    (LeftoversContext(), "maintenance mode left on; a scratch database left"),
])
def test_counts_warn_from_one(context, warning):
    assert judge(context, 0) == (Ok, None)
    assert judge(context, 1) == (Warn, warning)
    assert judge(context, 2)[0] == Warn


def test_an_archive_not_verified_is_critical_with_the_reason():
    failed = SimpleNamespace(selection=selection(), verification=VERIFIED._replace(state="critical",
                                                                                     reason="dump truncated"))

    assert judge(VerifiedContext(), 1, failed) == (Ok, None)
    assert judge(VerifiedContext(), 0, failed) == (
        Critical, "itop-2026-11-26.tar.gz fails dump verification: dump truncated")


def test_verification_warnings_name_the_archives_warning_then_the_findings():
    warned = SimpleNamespace(selection=selection(), verification=VERIFIED._replace(
        state="warning", reason="a base-256 size", findings=("1 table vanished since x: t",)))

    assert judge(VerificationWarningsContext(), 0, warned) == (Ok, None)
    assert judge(VerificationWarningsContext(), 2, warned) == (
        Warn, "itop-2026-11-26.tar.gz: a base-256 size; 1 table vanished since x: t")


def test_report_metrics_are_always_ok_even_negative_and_write_plain_perfdata():
    assert judge(ReportContext(), -33.73) == (Ok, None)
    performance = ReportContext().performance(nagiosplugin.Metric("size_z", -33.73), RESOURCE)
    assert str(performance) == "size_z=-33.73"


@pytest.mark.parametrize("context", [MissingContext(settings()), RetentionContext(), ExposureContext(),
                                     LeftoversContext(), ReductionContext(10), VerifiedContext(),
                                     VerificationWarningsContext()])
def test_judgements_without_a_graph_write_no_perfdata(context):
    assert perfdata(context, 1) is None


@pytest.mark.parametrize("overdue, line", [
    (None, "itop-2026-11-27.tar.gz is still being written (12s ago)"),
    (36000, "itop-2026-11-27.tar.gz is still being written (12s ago), 10h 0m after the backup due Fri "
            "2026-11-27 23:30 (grace 2h 0m)"),
])
def test_the_summary_says_what_is_being_written_before_the_archive_missing_once(overdue, line):
    resource = SimpleNamespace(settings=settings(), selection=selection(in_progress=WRITING,
                                                                        overdue_slot=DUE))
    results = nagiosplugin.Results(judge_result(MissingContext(resource.settings), 1, resource))
    if overdue is not None:
        results.add(judge_result(OverdueContext(resource.settings), overdue, resource))

    assert ItopBackupSummary(resource).problem(results) == (
        f"{line}; itop-2026-11-27.tar.gz is missing (backup due Fri 2026-11-27 23:30); newest is "
        "itop-2026-11-26.tar.gz, 1d 10h old")
