"""The probe as a monitoring system sees it: status line, perfdata, exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check

PARIS = ZoneInfo("Europe/Paris")
# Friday 27 Nov 2026, 10:00 in Paris: the Thursday 23:30 backup is due (grace 2h over).
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)
MINUTE_PATTERN = "__DB__-%Y-%m-%d_%H_%M"
ARCHIVE_SIZE = ITOP_ARCHIVE.stat().st_size


def check(tmp_path: Path, *extra: str, now: datetime = NOW, pattern: str = MINUTE_PATTERN):
    return run_check("-f", tmp_path / pattern, "--db-name", "itop", "--timezone", "Europe/Paris",
                     "--now", now.isoformat(), *extra)


def test_ok_names_the_archive_its_age_and_size_with_perfdata(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))

    run = check(tmp_path)

    assert run.exit_code == 0
    assert run.status_line == ("ITOP_BACKUP OK - itop-2026-11-26_23_30.tar.gz: 10h 26m old, 1.1 MiB"
            ", learning size history (0/3)")
    assert run.perfdata == f"age=37560s;;;0 history=1;;;0 size={ARCHIVE_SIZE}B;;1:;0"


def test_a_date_pattern_without_todays_archive_is_critical_and_names_the_newest(tmp_path):
    place_archive(tmp_path / "itop-2026-11-25.tar.gz", datetime(2026, 11, 25, 23, 40, tzinfo=PARIS))

    run = check(tmp_path, pattern="__DB__-%Y-%m-%d")

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - itop-2026-11-26.tar.gz is missing (backup due "
                               "Thu 2026-11-26 23:30); newest is itop-2026-11-25.tar.gz, 1d 10h old")
    assert run.perfdata == f"age=123600s;;;0 history=1;;;0 size={ARCHIVE_SIZE}B;;1:;0"


def test_a_minute_pattern_with_zero_matches_is_critical_never_ok(tmp_path):
    (tmp_path / "unrelated.tar.gz").write_bytes(b"x")

    run = check(tmp_path)

    assert run.exit_code == 2
    assert run.status_line == (
        "ITOP_BACKUP CRITICAL - no archive itop-2026-11-26_23_30.tar.gz or later (backup due "
        f"Thu 2026-11-26 23:30); no archive matches {tmp_path}/itop-*-*-*_*_*.tar.gz")
    assert run.perfdata == ""


def test_an_archive_of_an_earlier_slot_does_not_count_for_a_minute_pattern(tmp_path):
    place_archive(tmp_path / "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 25, 23, 35, tzinfo=PARIS))

    run = check(tmp_path)

    assert run.exit_code == 2
    assert run.status_line == (
        "ITOP_BACKUP CRITICAL - no archive itop-2026-11-26_23_30.tar.gz or later (backup due "
        "Thu 2026-11-26 23:30); newest is itop-2026-11-25_23_30.tar.gz, 1d 10h old")


def test_a_literal_path_older_than_the_critical_age_is_critical(tmp_path):
    place_archive(tmp_path / "itop.tar.gz", NOW - timedelta(hours=30))

    run = check(tmp_path, "-w", "20h", "-c", "26h", "--week-days", "monday", pattern="itop.tar.gz")

    assert run.exit_code == 2
    assert run.status_line == "ITOP_BACKUP CRITICAL - itop.tar.gz is 1d 6h old (more than 1d 2h)"
    assert run.perfdata == f"age=108000s;72000;93600;0 history=1;;;0 size={ARCHIVE_SIZE}B;;1:;0"


def test_an_archive_older_than_the_warning_age_only_is_a_warning(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))

    run = check(tmp_path, "-w", "8h", "-c", "1d")

    assert run.exit_code == 1
    assert run.status_line == ("ITOP_BACKUP WARNING - itop-2026-11-26_23_30.tar.gz is 10h 26m old "
                               "(more than 8h 0m)")


def test_a_literal_path_written_before_the_due_backup_is_stale(tmp_path):
    place_archive(tmp_path / "itop.tar.gz", datetime(2026, 11, 25, 23, 40, tzinfo=PARIS))

    run = check(tmp_path, pattern="itop.tar.gz")

    assert run.exit_code == 2
    assert run.status_line == ("ITOP_BACKUP CRITICAL - itop.tar.gz is stale: last written "
                               "Wed 2026-11-25 23:40, before the backup due Thu 2026-11-26 23:30")


def test_an_archive_not_above_size_min_is_critical_with_both_values(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))

    run = check(tmp_path, "--size-min", "20MB")

    assert run.exit_code == 2
    assert run.status_line == (f"ITOP_BACKUP CRITICAL - itop-2026-11-26_23_30.tar.gz is 1.1 MiB "
                               f"({ARCHIVE_SIZE} B), not above the 20000000 B minimum")
    assert run.perfdata == f"age=37560s;;;0 history=1;;;0 size={ARCHIVE_SIZE}B;;20000001:;0"


def test_an_empty_archive_is_always_critical(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS),
                  size=0)

    run = check(tmp_path)

    assert run.exit_code == 2
    assert run.status_line == "ITOP_BACKUP CRITICAL - itop-2026-11-26_23_30.tar.gz is empty (0 bytes)"


def test_an_archive_still_being_written_is_skipped_and_the_previous_one_judged(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))
    place_archive(tmp_path / "itop-2026-11-27_09_59.tar.gz", NOW - timedelta(seconds=30))

    run = check(tmp_path)

    assert run.exit_code == 0
    assert run.status_line == (
        "ITOP_BACKUP OK - itop-2026-11-27_09_59.tar.gz is still being written (30s ago); "
        "previous archive itop-2026-11-26_23_30.tar.gz: 10h 26m old, 1.1 MiB, learning size history (0/3)")


def test_the_slots_archive_still_being_written_past_its_grace_is_a_warning(tmp_path):
    place_archive(tmp_path / "itop-2026-11-25_23_30.tar.gz", datetime(2026, 11, 25, 23, 34, tzinfo=PARIS))
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", NOW - timedelta(seconds=10))

    run = check(tmp_path, "--settle", "60")

    assert run.exit_code == 1
    assert run.status_line == (
        "ITOP_BACKUP WARNING - itop-2026-11-26_23_30.tar.gz is still being written (10s ago), "
        "10h 30m after the backup due Thu 2026-11-26 23:30 (grace 2h 0m)")


@pytest.mark.parametrize("now", [
    datetime(2026, 11, 28, 12, 0, tzinfo=PARIS),   # Saturday
    datetime(2026, 11, 29, 23, 0, tzinfo=PARIS),   # Sunday
    datetime(2026, 11, 30, 20, 0, tzinfo=PARIS),   # Monday evening, before Monday's backup
])
def test_a_friday_archive_is_on_time_all_weekend_with_a_weekday_schedule(tmp_path, now):
    place_archive(tmp_path / "itop-2026-11-27_23_30.tar.gz", datetime(2026, 11, 27, 23, 36, tzinfo=PARIS))

    run = check(tmp_path, "--week-days", "monday, tuesday, wednesday, thursday, friday",
                "--time", "23:30", now=now)

    assert run.exit_code == 0, run.stdout
    assert run.status_line.startswith("ITOP_BACKUP OK - itop-2026-11-27_23_30.tar.gz: ")


def test_the_same_friday_archive_is_late_on_tuesday_morning(tmp_path):
    place_archive(tmp_path / "itop-2026-11-27_23_30.tar.gz", datetime(2026, 11, 27, 23, 36, tzinfo=PARIS))

    run = check(tmp_path, "--week-days", "monday, tuesday, wednesday, thursday, friday",
                now=datetime(2026, 12, 1, 8, 0, tzinfo=PARIS))

    assert run.exit_code == 2
    assert run.status_line == (
        "ITOP_BACKUP CRITICAL - no archive itop-2026-11-30_23_30.tar.gz or later (backup due "
        "Mon 2026-11-30 23:30); newest is itop-2026-11-27_23_30.tar.gz, 3d 8h old")


def test_names_follow_itops_timezone_not_utc_near_midnight(tmp_path):
    # 23:45 UTC on the 26th is 00:45 on the 27th in Paris: iTop named its 00:10 backup "-27".
    now = datetime(2026, 11, 26, 23, 45, tzinfo=ZoneInfo("UTC"))
    place_archive(tmp_path / "itop-2026-11-27.tar.gz", datetime(2026, 11, 27, 0, 12, tzinfo=PARIS))
    common = ("-f", tmp_path / "__DB__-%Y-%m-%d", "--db-name", "itop", "--time", "00:10",
              "--grace", "30m", "--now", now.isoformat())

    paris = run_check(*common, "--timezone", "Europe/Paris", "--print-expected")
    utc = run_check(*common, "--timezone", "UTC", "--print-expected")
    verdict = run_check(*common, "--timezone", "Europe/Paris")

    assert f"expected name: {tmp_path}/itop-2026-11-27.tar.gz" in paris.stdout.splitlines()
    assert f"expected name: {tmp_path}/itop-2026-11-26.tar.gz" in utc.stdout.splitlines()
    assert verdict.exit_code == 0
    assert verdict.status_line == ("ITOP_BACKUP OK - itop-2026-11-27.tar.gz: 33m 0s old, 1.1 MiB"
            ", learning size history (0/3)")


def test_a_bad_option_exits_unknown_not_critical(tmp_path):
    run = run_check("--warning-age-typo", "1h")

    assert run.exit_code == 3
    assert run.status_line == ("ITOP_BACKUP UNKNOWN - bad arguments: unrecognized arguments: "
                               "--warning-age-typo 1h")


@pytest.mark.parametrize("option, value, message", [
    ("--warning-age", "soon", "--warning-age: invalid duration 'soon' (use e.g. 90, 30m, 26h, 2d)"),
    ("--size-min", "huge", "--size-min: invalid size 'huge' (use e.g. 20000, 20MB, 20MiB)"),
    ("--timezone", "Mars/Olympus", "unknown timezone 'Mars/Olympus' (use an IANA name such as "
                                   "Europe/Paris)"),
    ("--week-days", "funday", "wrong format for setting 'week_days' (found 'funday'; give day names "
     "separated by commas, e.g. 'monday, tuesday, wednesday, thursday, friday')"),
])
def test_a_bad_value_exits_unknown_with_one_line(tmp_path, option, value, message):
    run = run_check("-f", tmp_path / "x.tar.gz", option, value)

    assert run.exit_code == 3
    assert run.stdout == f"ITOP_BACKUP UNKNOWN - {message}\n"


def test_no_pattern_at_all_exits_unknown_saying_what_to_give():
    run = run_check()

    assert run.exit_code == 3
    assert run.stdout == ("ITOP_BACKUP UNKNOWN - no backup file pattern: give --backup-file, "
                          "a --param-file with backup_file, or --itop-config\n")


def test_an_unparsable_itop_config_is_unknown_naming_file_and_line(tmp_path):
    config = tmp_path / "conf" / "production" / "config-itop.php"
    config.parent.mkdir(parents=True)
    config.write_text("<?php\n$MySettings = array(\n  'db_name' => 'itop',\n  'x' => foo(),\n);\n")

    run = run_check("--itop-config", config)

    assert run.exit_code == 3
    assert run.stdout == (f"ITOP_BACKUP UNKNOWN - cannot parse iTop config {config}: line 4: "
                          "unsupported value 'foo'\n")


def test_an_unreadable_directory_is_unknown(tmp_path):
    (tmp_path / "file").write_text("not a directory")

    run = check(tmp_path / "file")

    assert run.exit_code == 3
    assert run.stdout == f"ITOP_BACKUP UNKNOWN - cannot list {tmp_path}/file: Not a directory\n"


def test_a_timeout_is_unknown_and_names_the_stage(tmp_path):
    fifo = tmp_path / "config-itop.php"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will

    run = run_check("--itop-config", fifo, "-f", tmp_path / "x.tar.gz", "--timeout", "0.5")

    assert run.exit_code == 3
    assert run.stdout == "ITOP_BACKUP UNKNOWN - timed out after 0.5s while reading the configuration\n"


def test_itops_config_gives_the_default_location_schedule_and_timezone(tmp_path):
    root = tmp_path / "itop"
    config = root / "conf" / "production" / "config-itop.php"
    config.parent.mkdir(parents=True)
    with tarfile.open(ITOP_ARCHIVE) as archive:  # the real config: Mon-Fri 23:30, Europe/Paris
        config.write_bytes(archive.extractfile("config-itop.php").read())
    place_archive(root / "data/backups/auto/itop-2026-11-27_23_30.tar.gz",
                  datetime(2026, 11, 27, 23, 40, tzinfo=PARIS))

    run = run_check("--itop-config", config, "--now", "2026-11-30T18:00:00+00:00", "-v")

    assert run.exit_code == 0
    assert run.status_line == ("ITOP_BACKUP OK - itop-2026-11-27_23_30.tar.gz: 2d 19h old, 1.1 MiB"
            ", learning size history (0/3)")
    assert run.long_output[:2] == [
        f"pattern: {root}/data/backups/auto/itop-%Y-%m-%d_%H_%M.tar.gz (timezone Europe/Paris)",
        "schedule: Mon-Fri 23:30, grace 2h 0m; expected the backup of Fri 2026-11-27 23:30: "
        f"{root}/data/backups/auto/itop-2026-11-27_23_30.tar.gz",
    ]


def test_itops_sample_param_file_is_accepted_as_is(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))
    distrib = Path(__file__).parents[1] / "data" / "backup.params.distrib"
    small = tmp_path / "small.params"
    small.write_text("check_size_min = 2000000 # bytes, more than the sample archive\n")

    plain = check(tmp_path, "--param-file", distrib)
    too_small = check(tmp_path, "--param-file", f"{distrib},{small}")

    assert plain.exit_code == 0
    assert plain.perfdata.endswith(f"size={ARCHIVE_SIZE}B;;20001:;0")  # check_size_min = 20000
    assert too_small.exit_code == 2
    assert too_small.status_line.endswith("not above the 2000000 B minimum")


def test_the_param_files_backup_file_is_used_when_no_pattern_is_given(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))
    params = tmp_path / "backup.params"
    params.write_text(f"backup_file = {tmp_path}/__DB__-%Y-%m-%d\nauth_pwd = secret\n")

    run = run_check("--param-file", params, "--db-name", "itop", "--timezone", "Europe/Paris",
                    "--now", NOW.isoformat())

    assert run.exit_code == 0
    assert run.status_line == ("ITOP_BACKUP OK - itop-2026-11-26.tar.gz: 10h 26m old, 1.1 MiB"
            ", learning size history (0/3)")


def test_json_format_prints_one_object_and_exits_zero_even_when_critical(tmp_path):
    import json

    run = check(tmp_path, "--format", "json")

    report = json.loads(run.stdout)
    assert run.exit_code == 0
    assert report["state"] == "CRITICAL"
    assert report["exit_code"] == 2
    assert report["message"].startswith("no archive itop-2026-11-26_23_30.tar.gz or later")
    assert report["expected"] == f"{tmp_path}/itop-2026-11-26_23_30.tar.gz"


@pytest.mark.parametrize("argv", [["--format", "json", "--bogus"], ["--format=json", "-w"]])
def test_bad_arguments_with_json_format_still_print_one_json_object(argv):
    import json

    run = run_check(*argv)

    report = json.loads(run.stdout)
    assert run.exit_code == 0
    assert (report["state"], report["exit_code"]) == ("UNKNOWN", 3)
    assert report["message"].startswith("bad arguments: ")


def test_help_and_version_exit_unknown_as_the_guidelines_say():
    assert run_check("--help").exit_code == 3
    version = run_check("--version")
    assert version.exit_code == 3
    assert version.stdout.startswith("check_itop_backup 0.")


def test_the_installed_console_script_runs_on_the_shipped_sample_archive(tmp_path):
    script = shutil.which("check_itop_backup", path=os.path.dirname(sys.executable))
    assert script, "check_itop_backup is not installed beside this Python"
    import check_itop_backup

    sample = Path(check_itop_backup.__file__).parent / "sample" / "itop-2026-11-26.tar.gz"
    fresh = shutil.copy(sample, tmp_path / "itop-2026-11-26.tar.gz")  # as just installed
    done = subprocess.run([script, "--backup-file", fresh, "--settle", "0"],
                          capture_output=True, text=True, timeout=60)

    assert done.stderr == ""
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("ITOP_BACKUP OK - itop-2026-11-26.tar.gz: ")
    assert done.stdout.rstrip().endswith(f"size={ARCHIVE_SIZE}B;;1:;0")
