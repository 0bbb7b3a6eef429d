"""``--format checkmk``: Checkmk local-check lines, read by the grammar of Checkmk's local-check
documentation, and the state Checkmk computes for a ``P`` line from its thresholds."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from datetime import datetime, timedelta

from check_itop_backup.history import History
from tests.archive_corpus import itop_tar
from tests.backup.test_restore import probe_config, tiny_dump, write_archive
from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check
from tests.cli.test_check import NOW, PARIS, check

ARCHIVE_SIZE = ITOP_ARCHIVE.stat().st_size
WRITTEN = datetime(2026, 11, 26, 23, 34, tzinfo=PARIS)
DAY = 86400

# <state> <service> <metrics> <text>: state 0-3 or P; the name in double quotes, no quotes in it;
# metrics "-" or name=value;warn;crit;min;max entries joined by "|"; a text (here never empty)
LINE = re.compile(r'^(?P<state>[0-3P]) "(?P<service>[^"\']+)" (?P<metrics>\S+) (?P<text>\S.*)$')
NUMBER = r"-?\d+(?:\.\d+)?"
LEVEL = rf"(?:{NUMBER}|{NUMBER}:|:{NUMBER}|{NUMBER}:{NUMBER})?"
METRIC = re.compile(rf"^(?P<name>[A-Za-z0-9_]+)=(?P<value>{NUMBER})(?:;(?P<warn>{LEVEL})"
                    rf"(?:;(?P<crit>{LEVEL})(?:;(?:{NUMBER})?(?:;(?:{NUMBER})?)?)?)?)?$")


def parse(line: str) -> dict:
    """A local-check line as Checkmk reads it; fail on anything outside its grammar."""
    found = LINE.match(line)
    assert found, f"not a local-check line: {line!r}"
    metrics = {}
    if found["metrics"] != "-":
        for entry in found["metrics"].split("|"):
            metric = METRIC.match(entry)
            assert metric, f"not a metric: {entry!r} in {line!r}"
            metrics[metric["name"]] = (float(metric["value"]), metric["warn"] or "", metric["crit"] or "")
    return {"state": found["state"], "service": found["service"], "metrics": metrics, "text": found["text"]}


def levels(text: str) -> tuple[float, float]:
    """(lower, upper) of one level as Checkmk writes it: ``upper``, ``lower:``, ``lower:upper``."""
    if not text:
        return -math.inf, math.inf
    lower, colon, upper = text.rpartition(":") if ":" in text else ("", "", text)
    return float(lower) if lower else -math.inf, float(upper) if upper else math.inf


def computed_state(metrics: dict) -> int:
    """The state Checkmk gives a P line: the worst over its metrics, CRIT at or above the upper
    critical level or below the lower one, WARN likewise with the warning levels (a critical level
    alone is the warning level too); no levels, OK."""
    worst = 0
    for value, warn, crit in metrics.values():
        warn = warn or crit
        for state, level in ((2, crit), (1, warn)):
            lower, upper = levels(level)
            if value >= upper or value < lower:
                worst = max(worst, state)
                break
    return worst


def lines(run) -> list[dict]:
    assert run.exit_code == 0  # the agent reads the lines, not the exit status
    return [parse(line) for line in run.stdout.splitlines()]


def test_ok_is_state_0_with_the_metrics_and_their_levels(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)

    [line] = lines(check(tmp_path, "--format", "checkmk"))

    assert line == {"state": "0", "service": "iTop backup itop", "text": (
        "itop-2026-11-26_23_30.tar.gz: 10h 26m old, 1.1 MiB, learning size history (0/3)"),
        "metrics": {"missing": (0, "", "0"), "age": (37560, "", ""), "size": (ARCHIVE_SIZE, "", "1:"),
                    "world_readable": (0, "0", ""), "history": (1, "", "")}}


def test_warning_is_state_1_and_names_the_age_limit(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)

    [line] = lines(check(tmp_path, "--format", "checkmk", "--warning-age", "1h", "--critical-age", "2d",
                         "--instance", "production"))

    assert line["state"] == "1" and line["service"] == "iTop backup production"
    assert line["metrics"]["age"] == (37560, "3600", "172800")
    assert line["text"] == "itop-2026-11-26_23_30.tar.gz is 10h 26m old (more than 1h 0m)"


def test_critical_is_state_2_and_the_size_trend_keeps_its_ranges(tmp_path):
    for day in (22, 23, 24, 25):
        place_archive(tmp_path / f"itop-2026-11-{day}_23_30.tar.gz",
                      datetime(2026, 11, day, 23, 34, tzinfo=PARIS), size=2_000_000)
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN, size=600_000)

    [line] = lines(check(tmp_path, "--format", "checkmk"))

    assert line["state"] == "2"
    assert line["metrics"]["size_change"] == (-70, "-20:100", "-50:300")
    assert line["metrics"]["baseline"] == (2_000_000, "", "")
    assert line["text"] == "size 585.9 KiB is -70% vs median 1.9 MiB of the last 4 backups"


def test_unknown_is_state_3_without_metrics(tmp_path):
    run = run_check("-f", tmp_path / "__DB__-%Y", "--format", "checkmk", "--instance", "prod")

    assert lines(run) == [{"state": "3", "service": "iTop backup prod", "metrics": {},
                           "text": "__DB__ needs --db-name or --itop-config"}]


def record_restore_test(tmp_path, history_path, state: str, at: datetime) -> None:
    """Two archives, and a test restore of the older one stored as the probe stores one (history.py):
    the judged archive, the newer, has none yet."""
    place_archive(tmp_path / "itop-2026-11-25_23_30.tar.gz", WRITTEN - timedelta(days=1))
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)
    check(tmp_path, "--format", "json")  # records the archives
    with sqlite3.connect(history_path) as database:
        [(archive_id,)] = database.execute("SELECT id FROM archives WHERE path LIKE '%25_23_30%'")
    history = History.open(str(history_path))
    try:
        with history.transaction():
            history.record_verification(archive_id, "restore", state, "3 tables, rows as in the dump",
                                        json.dumps({"reached": "restore"}), at.timestamp())
    finally:
        history.close()


def restore_line(run) -> dict:
    backup, restore = lines(run)
    assert backup["service"] == "iTop backup itop", backup
    assert restore["service"] == "iTop restore test itop"
    return restore


def test_a_recent_passed_test_restore_is_a_p_line_checkmk_computes_ok(tmp_path, private_history):
    record_restore_test(tmp_path, private_history, "ok", NOW - timedelta(days=2))

    # the last test restore is 2 days old: this run verifies at dump level, no server needed
    restore = restore_line(check(tmp_path, "--format", "checkmk", "--verify", "restore"))

    assert restore["state"] == "P"
    assert restore["metrics"] == {"restore_test_age": (2 * DAY, str(int(10.5 * DAY)), str(14 * DAY)),
                                  "restore_test_failed": (0, "", "0.5")}
    assert computed_state(restore["metrics"]) == 0
    assert restore["text"] == ("test restore of itop-2026-11-25_23_30.tar.gz 2d 0h ago: ok: "
                               "3 tables, rows as in the dump")


def test_a_stale_test_restore_is_a_p_line_checkmk_computes_warning_then_critical(tmp_path, private_history):
    record_restore_test(tmp_path, private_history, "ok", NOW - timedelta(days=12))
    unreachable = ("--db-host", "127.0.0.1", "--db-port", "1")  # the test restore due cannot run

    run = check(tmp_path, "--format", "checkmk", "--verify", "restore", *unreachable)
    backup, restore = lines(run)

    assert backup["state"] == "3" and backup["text"].startswith("cannot verify ")
    assert restore["state"] == "P" and restore["metrics"]["restore_test_age"][0] == 12 * DAY
    assert computed_state(restore["metrics"]) == 1
    assert restore["text"].startswith(backup["text"] + "; last test restore of itop-2026-11-25_23_30.tar.gz "
                                      "12d 0h ago: ok")

    later = check(tmp_path, "--format", "checkmk", "--verify", "restore", *unreachable,
                  now=NOW + timedelta(days=3))
    assert computed_state(restore_line(later)["metrics"]) == 2  # 15 days: twice --restore-every


def test_a_failed_test_restore_is_a_p_line_checkmk_computes_critical(tmp_path, private_history):
    record_restore_test(tmp_path, private_history, "critical", NOW - timedelta(hours=1))

    restore = restore_line(check(tmp_path, "--format", "checkmk", "--verify", "restore",
                                 "--db-host", "127.0.0.1", "--db-port", "1"))

    assert restore["metrics"]["restore_test_failed"] == (1, "", "0.5")
    assert computed_state(restore["metrics"]) == 2


def test_an_unknown_restore_check_without_any_test_is_state_3(tmp_path):
    run = run_check("-f", tmp_path / "__DB__-%Y", "--format", "checkmk", "--verify", "restore")

    assert [line["state"] for line in lines(run)] == ["3", "3"]
    assert lines(run)[1]["text"] == "no test restore known: __DB__ needs --db-name or --itop-config"


def test_a_real_test_restore_gives_both_services(mariadb_server, tmp_path):
    archive = write_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", itop_tar(dump=tiny_dump()))
    os.utime(archive, (WRITTEN.timestamp(), WRITTEN.timestamp()))
    config = probe_config(tmp_path, mariadb_server)

    backup, restore = lines(check(tmp_path, "--format", "checkmk", "--itop-config", config,
                                  "--verify", "restore"))

    assert backup["state"] == "0" and "restore level verified" in backup["text"]
    assert backup["metrics"]["verified"] == (1, "", "1:")
    assert restore["state"] == "P"
    assert restore["metrics"]["restore_test_failed"] == (0, "", "0.5")
    assert computed_state(restore["metrics"]) == 0
    assert restore["text"].startswith("test restore of itop-2026-11-26_23_30.tar.gz ")
