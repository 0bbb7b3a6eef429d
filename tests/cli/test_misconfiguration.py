"""Misconfiguration reads as such, not as a failed backup or a crash.

The probe answers UNKNOWN (3, or one JSON object with ``--format json``) with one line that
says what to give; ``itop-backup`` exits 2 for bad usage and 1 for a run it refuses. Range
options take values starting with ``-`` in both spellings. Output to a reader that has gone
(``| head -1``) ends quietly, and ``--help`` fits 80 columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from check_itop_backup.cli.backup import SUBCOMMANDS, backup_main
from tests.backup.test_run import write_itop
from tests.check.test_trend import START, fill
from tests.checkrun import ITOP_ARCHIVE, run_check

PROBE = [sys.executable, "-m", "check_itop_backup"]
BACKUP = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()"]
SHRUNK = [100_000] * 7 + [75_000]  # the last archive 25 % below the median of the others


def backup(capsys, *argv: str) -> tuple[int, str]:
    """Run ``itop-backup`` in-process; return its exit status and stderr."""
    with pytest.raises(SystemExit) as exited:
        backup_main([str(a) for a in argv])
    return exited.value.code, capsys.readouterr().err


# --- point 1: ranges ------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", [["--warning-change", "-30:100"], ["--warning-change=-30:100"]])
def test_a_range_starting_with_a_minus_is_the_options_value_in_both_spellings(tmp_path, spelling):
    run = fill(tmp_path, SHRUNK, START, *spelling)

    assert run.exit_code == 0, run.stdout
    assert "size_change=-25.0%;-30:100;-50:300" in run.perfdata


def test_the_critical_range_takes_a_leading_minus_too(tmp_path):
    run = fill(tmp_path, SHRUNK, START, "--critical-change", "-20:300", "--warning-change", "-10:100")

    assert run.exit_code == 2, run.stdout
    assert "size_change=-25.0%;-10:100;-20:300" in run.perfdata


# --- point 6: misconfiguration ----------------------------------------------------------------

def test_db_placeholder_without_a_database_name_is_unknown_saying_what_to_give(tmp_path):
    run = run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--history", tmp_path / "h.sqlite")

    assert run.exit_code == 3
    assert run.stdout == "ITOP_BACKUP UNKNOWN - __DB__ needs --db-name or --itop-config\n"


def test_the_zabbix_item_with_an_empty_config_parameter_is_unknown_not_critical(tmp_path):
    params = tmp_path / "production.params"
    params.write_text(f"backup_file = {tmp_path}/__DB__-%Y-%m-%d_%H_%M\n")

    # itop.backup.check[<param file>,,stat], as the UserParameter passes it
    run = run_check("--format", "json", "--timeout", "25", "--param-file", params, "--itop-config", "",
                    "--verify", "stat", "--history", tmp_path / "h.sqlite")

    assert run.exit_code == 0
    report = json.loads(run.stdout)
    assert (report["state"], report["message"]) == ("UNKNOWN", "__DB__ needs --db-name or --itop-config")


def test_a_directory_as_the_pattern_is_unknown_with_a_pattern_to_give(tmp_path):
    run = run_check("-f", tmp_path, "--history", tmp_path / "h.sqlite")

    assert run.exit_code == 3
    assert run.stdout == (f"ITOP_BACKUP UNKNOWN - -f names a directory: give a pattern, "
                          f"e.g. {tmp_path}/__DB__-%Y-%m-%d_%H_%M\n")


def test_the_runner_refuses_a_directory_as_the_pattern_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "backups"
    target.mkdir()

    status, err = backup(capsys, "run", "--db-name", "itop", "-f", target, "--history", tmp_path / "h.sqlite")

    assert status == 2
    assert err == (f"itop-backup run: -f names a directory: give a pattern, "
                   f"e.g. {target}/__DB__-%Y-%m-%d_%H_%M\n")
    assert sorted(os.listdir(tmp_path)) == ["backups"] and not os.listdir(target)


def test_discovery_of_a_missing_directory_in_json_mode_stays_json(tmp_path):
    run = run_check("--discover", tmp_path / "nowhere", "--format", "json")

    assert run.exit_code == 0
    report = json.loads(run.stdout)
    assert report["state"] == "UNKNOWN" and report["exit_code"] == 3
    assert report["message"] == f"cannot list {tmp_path}/nowhere: No such file or directory"


def test_discovery_of_an_empty_directory_macro_is_unknown_not_a_check():
    run = run_check("--discover", "")

    assert run.exit_code == 3
    assert run.stdout == "ITOP_BACKUP UNKNOWN - --discover needs a directory of iTop param files (*.params)\n"


def test_bad_week_days_say_the_accepted_form(tmp_path):
    run = run_check("-f", tmp_path / "itop-%Y-%m-%d", "--week-days", "mon-fri")

    assert run.exit_code == 3
    assert run.stdout == ("ITOP_BACKUP UNKNOWN - wrong format for setting 'week_days' (found 'mon-fri'; "
                          "give day names separated by commas, e.g. "
                          "'monday, tuesday, wednesday, thursday, friday')\n")


@pytest.mark.parametrize("option, value", [
    ("--baseline-count", "0"), ("--min-history", "-1"), ("--min-history", "0"),
    ("--retention-count", "-1"), ("--retention-count", "2.5"),
    ("--size-reduction-max", "-5"), ("--size-reduction-max", "nan"), ("--size-reduction-max", "inf"),
    ("--size-reduction-max", "150"), ("-t", "-1"), ("-t", "nan"), ("-t", "inf"),
])
def test_bad_numbers_are_bad_arguments(tmp_path, option, value):
    run = run_check("-f", tmp_path / "itop.tar.gz", "--history", tmp_path / "h.sqlite", f"{option}={value}")

    assert run.exit_code == 3
    assert run.status_line.startswith("ITOP_BACKUP UNKNOWN - ")
    assert option in run.status_line and repr(value) in run.status_line, run.status_line
    assert not (tmp_path / "h.sqlite").exists()


def test_a_bad_reduction_in_a_param_file_is_unknown_naming_it(tmp_path):
    params = tmp_path / "backup.params"
    params.write_text(f"backup_file = {tmp_path}/itop.tar.gz\ncheck_size_reduction_max = ten\n")

    run = run_check("--param-file", params, "--history", tmp_path / "h.sqlite")

    assert (run.exit_code, run.stdout) == (3, "ITOP_BACKUP UNKNOWN - --size-reduction-max: expected a "
                                              "percentage from 0 to 100, found 'ten'\n")


def closed_pipe_run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run *argv* with stdout a pipe whose reader has already gone (``… | head -1`` once the
    first line is read: deterministic, whatever the timing)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(argv, stdout=writer, stderr=subprocess.PIPE, text=True, check=False, timeout=60,
                              env={**os.environ, "CHECK_ITOP_BACKUP_HISTORY": str(tmp_path / "h")})
    finally:
        os.close(writer)


@pytest.mark.parametrize("argv, status", [
    (BACKUP + ["verify", "-v", str(ITOP_ARCHIVE)], 1),
    (PROBE + ["-f", str(ITOP_ARCHIVE), "-vvv"], 3),
    (PROBE + ["-f", str(ITOP_ARCHIVE), "--format", "json"], 3),
])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, argv, status):
    finished = closed_pipe_run(argv, tmp_path)

    assert (finished.returncode, finished.stderr) == (status, "")


def test_a_second_run_in_the_same_minute_refuses_and_replaces_nothing(tmp_path, mariadb_database, capsys):
    settings, database = mariadb_database
    config = write_itop(tmp_path / "itop", settings, database)  # timezone Europe/Paris
    target = tmp_path / "backups"
    target.mkdir()
    now = datetime.now(ZoneInfo("Europe/Paris"))
    earlier = {}
    for when in (now, now + timedelta(minutes=1)):  # the run's minute, whichever it starts in
        path = target / f"{database}-{when:%Y-%m-%d_%H_%M}.tar.gz"
        path.write_bytes(b"the archive of an earlier run " + path.name.encode())
        earlier[path.name] = path.read_bytes()

    status, err = backup(capsys, "run", "--itop-config", config, "-f", target / "__DB__-%Y-%m-%d_%H_%M",
                         "--history", tmp_path / "h.sqlite")

    assert status == 1
    assert err.count("\n") == 1 and err.startswith(f"itop-backup run: {target}/{database}-")
    assert err.endswith(" already exists (made by a run earlier in the same minute): not replaced\n")
    assert {p.name: p.read_bytes() for p in target.glob("*.tar.gz")} == earlier
    assert sorted(p.name for p in target.iterdir()) == sorted([*earlier, ".itop-backup.lock"])


@pytest.mark.parametrize("command", [PROBE] + [BACKUP + [name] for name in ["", *SUBCOMMANDS]])
def test_help_fits_80_columns(command):
    argv = [part for part in command if part] + ["--help"]
    shown = subprocess.run(argv, capture_output=True, text=True, check=False,
                           env={**os.environ, "COLUMNS": "80"})

    assert shown.returncode in (0, 3) and "usage:" in shown.stdout, shown.stderr
    assert [line for line in shown.stdout.splitlines() if len(line) > 80] == []
