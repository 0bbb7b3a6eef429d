"""Size history in SQLite and trend verdicts, as the probe reports them."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.checkrun import place_archive, run_check

PARIS = ZoneInfo("Europe/Paris")
MIB = 1024 * 1024


def archive_on(directory: Path, day: datetime, size: int) -> Path:
    """The archive iTop's 23:30 backup of *day* would write, *size* bytes, finished at 23:34."""
    return place_archive(directory / f"itop-{day:%Y-%m-%d}_23_30.tar.gz",
                         day.replace(hour=23, minute=34), size=size)


def days(first: datetime, count: int, weekdays_only: bool = False) -> list[datetime]:
    found, day = [], first
    while len(found) < count:
        if not weekdays_only or day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


START = datetime(2026, 11, 2, tzinfo=PARIS)  # a Monday


def check_after(directory: Path, day: datetime, *extra: str):
    """Run the probe the morning after *day*'s backup."""
    morning = (day + timedelta(days=1)).replace(hour=8)
    return run_check("-f", directory / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                     "--timezone", "Europe/Paris", "--now", morning.isoformat(), *extra)


def fill(directory: Path, sizes: list[int], first: datetime = START, *extra: str,
         weekdays_only: bool = False):
    """Make one archive a day with *sizes*, running the probe after each; return the last run."""
    run = None
    for day, size in zip(days(first, len(sizes), weekdays_only), sizes):
        archive_on(directory, day, size)
        run = check_after(directory, day, *extra)
    return run


def test_the_first_archives_are_learning(tmp_path):
    run = fill(tmp_path, [20 * MIB, 20 * MIB, 20 * MIB])

    assert run.exit_code == 0
    assert run.status_line.endswith("20.0 MiB, learning size history (2/3)")
    assert "size_change" not in run.perfdata
    assert "history=3;;;0" in run.perfdata


def test_steady_sizes_are_ok_with_the_trend_in_words_and_perfdata(tmp_path):
    sizes = [20 * MIB + i * 1000 for i in range(8)]

    run = fill(tmp_path, sizes)

    assert run.exit_code == 0
    assert run.status_line == ("ITOP_BACKUP OK - itop-2026-11-09_23_30.tar.gz: 8h 26m old, 20.0 MiB, "
                               "+0% vs median of 7")
    assert run.perfdata == (f"age=30360s;;;0 baseline={20 * MIB + 3000}B;;;0 history=8;;;0 "
                            f"size={20 * MIB + 7000}B;;1:;0 size_change=0.0%;-20:100;-50:300 size_z=0.01")


@pytest.mark.parametrize("factor, code, state", [(0.6, 1, "WARNING"), (0.4, 2, "CRITICAL")])
def test_a_shrunk_archive_is_a_warning_or_critical_per_thresholds(tmp_path, factor, code, state):
    run = fill(tmp_path, [20_900_000] * 7 + [int(20_900_000 * factor)])

    assert run.exit_code == code
    shrink = round((factor - 1) * 100)
    assert run.status_line == (f"ITOP_BACKUP {state} - size {20_900_000 * factor / MIB:.1f} MiB is "
                               f"{shrink:+d}% vs median 19.9 MiB of the last 7 backups")
    assert f"size_change={shrink}.0%;-20:100;-50:300" in run.perfdata


def test_thresholds_are_ranges_the_operator_sets(tmp_path):
    run = fill(tmp_path, [100 * MIB] * 7 + [75 * MIB], START, "--warning-change=-30:100")

    assert run.exit_code == 0
    assert "size_change=-25.0%;-30:100;-50:300" in run.perfdata


@pytest.mark.parametrize("factor, code", [(2.5, 1), (5.0, 2)])
def test_growth_has_its_own_thresholds(tmp_path, factor, code):
    run = fill(tmp_path, [10 * MIB] * 6 + [int(10 * MIB * factor)])

    assert run.exit_code == code
    assert run.status_line.endswith(f"is {(factor - 1) * 100:+.0f}% vs median 10.0 MiB of the last 6 backups")


def test_a_critical_archive_does_not_enter_the_baseline(tmp_path, private_history):
    run = fill(tmp_path, [10 * MIB] * 5 + [2 * MIB, 10 * MIB])

    assert run.exit_code == 0
    assert "baseline=10485760B" in run.perfdata  # the 2 MiB archive is not in the median
    with sqlite3.connect(private_history) as db:
        verdicts = db.execute("SELECT size, verdict FROM archives ORDER BY mtime").fetchall()
    assert verdicts == [(10 * MIB, "ok")] * 5 + [(2 * MIB, "critical"), (10 * MIB, "ok")]


def test_weekday_gaps_give_no_monday_false_alarm(tmp_path):
    run = fill(tmp_path, [30 * MIB] * 10, START, "--week-days",
               "monday, tuesday, wednesday, thursday, friday", weekdays_only=True)
    monday_evening = datetime(2026, 11, 16, 20, 0, tzinfo=PARIS)
    monday = run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop", "--timezone",
                       "Europe/Paris", "--week-days", "monday, tuesday, wednesday, thursday, friday",
                       "--now", monday_evening.isoformat())

    assert run.exit_code == 0
    assert monday.exit_code == 0
    assert monday.status_line == ("ITOP_BACKUP OK - itop-2026-11-13_23_30.tar.gz: 2d 20h old, 30.0 MiB, "
                                  "+0% vs median of 7")


def test_backfill_uses_the_retention_set_already_on_disk(tmp_path, private_history):
    for day in days(START, 5):
        archive_on(tmp_path, day, 8 * MIB)
    archive_on(tmp_path, START + timedelta(days=5), 4 * MIB)

    run = check_after(tmp_path, START + timedelta(days=5))

    assert run.exit_code == 1
    assert run.status_line.endswith("size 4.0 MiB is -50% vs median 8.0 MiB of the last 5 backups")
    with sqlite3.connect(private_history) as db:
        assert db.execute("SELECT COUNT(*) FROM archives").fetchone() == (6,)


def test_rechecking_the_same_archive_updates_never_duplicates(tmp_path, private_history):
    day = START
    archive_on(tmp_path, day, MIB)

    for _ in range(3):
        check_after(tmp_path, day)

    with sqlite3.connect(private_history) as db:
        assert db.execute("SELECT COUNT(*) FROM archives").fetchone() == (1,)


@pytest.mark.parametrize("limit, code", [("10", 2), ("20", 0)])
def test_itops_size_reduction_max_compares_with_the_previous_archive(tmp_path, limit, code):
    run = fill(tmp_path, [100 * MIB, 85 * MIB], START, "--size-reduction-max", limit)

    assert run.exit_code == code
    if code:
        assert run.status_line == ("ITOP_BACKUP CRITICAL - itop-2026-11-03_23_30.tar.gz is 15% smaller "
                                   "than itop-2026-11-02_23_30.tar.gz (check_size_reduction_max 10%)")


def test_size_reduction_max_comes_from_itops_param_file_too(tmp_path):
    params = tmp_path / "backup.params"
    params.write_text("check_size_reduction_max = 10 # percentage\n")

    run = fill(tmp_path, [100 * MIB, 85 * MIB], START, "--param-file", params)

    assert run.exit_code == 2
    assert "(check_size_reduction_max 10%)" in run.status_line


def test_a_missing_archive_of_the_retention_set_is_a_warning(tmp_path):
    fill(tmp_path, [MIB] * 5, START, "--retention-count", "5")
    (tmp_path / "itop-2026-11-03_23_30.tar.gz").unlink()

    run = check_after(tmp_path, START + timedelta(days=4), "--retention-count", "5")

    assert run.exit_code == 1
    assert run.status_line == "ITOP_BACKUP WARNING - 5 archives expected (retention), 4 found"


def test_twenty_concurrent_probes_never_lock_or_duplicate(tmp_path, private_history):
    for day in days(START, 6):
        archive_on(tmp_path, day, 5 * MIB)
    morning = (START + timedelta(days=6)).replace(hour=8).isoformat()
    command = [sys.executable, "-m", "check_itop_backup", "-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M",
               "--db-name", "itop", "--timezone", "Europe/Paris", "--now", morning,
               "--history", private_history]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(20)]
    outputs = [(p.communicate(timeout=120)[0], p.returncode) for p in processes]

    assert [code for _, code in outputs] == [0] * 20, outputs
    assert all(out.startswith("ITOP_BACKUP OK - itop-2026-11-07_23_30.tar.gz") for out, _ in outputs)
    with sqlite3.connect(private_history) as db:
        rows = db.execute("SELECT path, COUNT(*) FROM archives GROUP BY path").fetchall()
    assert len(rows) == 6 and all(count == 1 for _, count in rows)


def test_a_corrupt_history_is_unknown_naming_the_file_and_is_kept(tmp_path, private_history):
    archive_on(tmp_path, START, MIB)
    private_history.write_bytes(b"this is not a database, but someone's data" * 100)

    run = check_after(tmp_path, START)

    assert run.exit_code == 3
    assert run.stdout == (f"ITOP_BACKUP UNKNOWN - cannot use history {private_history}: "
                          "file is not a database\n")
    assert private_history.read_bytes().startswith(b"this is not a database")


def test_a_history_that_cannot_be_created_is_unknown(tmp_path):
    archive_on(tmp_path, START, MIB)
    (tmp_path / "file").write_text("")

    run = check_after(tmp_path, START, "--history", tmp_path / "file" / "history.sqlite")

    assert run.exit_code == 3
    assert run.stdout == (f"ITOP_BACKUP UNKNOWN - cannot open history {tmp_path}/file/history.sqlite: "
                          f"{tmp_path}/file is not a directory\n")


def itop_backup(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main;"
                           "backup_main()", *map(str, argv)], capture_output=True, text=True, timeout=60)


def test_the_history_command_lists_archives_as_table_json_and_csv(tmp_path, private_history):
    fill(tmp_path, [MIB, 2 * MIB, 30 * MIB])

    table = itop_backup("history", "--history", private_history)
    as_json = itop_backup("history", "--history", private_history, "--format", "json")
    as_csv = itop_backup("history", "--history", private_history, "--format", "csv")

    assert table.returncode == as_json.returncode == as_csv.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[1].split("  ")[0] == f"TIME (local, {datetime.now().astimezone().tzname()})"
    written = datetime(2026, 11, 4, 23, 34, tzinfo=PARIS).astimezone()  # shown in local time
    assert lines[6].split() == [f"{written:%Y-%m-%d}", f"{written:%H:%M:%S}", "archive", "ok",
                                str(30 * MIB), f"+{28 * MIB}", "(+1400.0%)", "-",
                                "itop-2026-11-04_23_30.tar.gz"]
    records = [r for r in json.loads(as_json.stdout) if r["event"] == "archive"]
    assert [(r["archive"], r["size"]) for r in records] == [
        (f"{tmp_path}/itop-2026-11-0{d}_23_30.tar.gz", s) for d, s in ((2, MIB), (3, 2 * MIB), (4, 30 * MIB))]
    assert datetime.fromisoformat(records[0]["time"]) == datetime(2026, 11, 2, 23, 34, tzinfo=PARIS)
    rows = [row for row in csv.DictReader(io.StringIO(as_csv.stdout)) if row["event"] == "archive"]
    assert [row["size"] for row in rows] == [str(MIB), str(2 * MIB), str(30 * MIB)]
    assert set(rows[0]) >= {"time", "archive", "size", "change", "state"}


def test_the_history_command_says_when_there_is_no_history(tmp_path):
    done = itop_backup("history", "--history", tmp_path / "none.sqlite")

    assert done.returncode == 1
    assert done.stderr == f"itop-backup: no history at {tmp_path}/none.sqlite\n"


def test_json_output_carries_the_trend_metrics_as_numbers(tmp_path):
    fill(tmp_path, [20 * MIB] * 7)
    archive_on(tmp_path, START + timedelta(days=7), 10 * MIB)

    run = check_after(tmp_path, START + timedelta(days=7), "--format", "json")

    report = json.loads(run.stdout)
    assert run.exit_code == 0
    assert (report["state"], report["exit_code"]) == ("WARNING", 1)
    assert report["metrics"] == {"age": 30360, "size": 10 * MIB, "size_change": -50.0,
                                 "baseline": 20 * MIB, "size_z": -33.73, "history": 8}
