"""``itop-backup history`` answers "what happened": the runner's runs, the
archives with their exact size and change, verifications, every change of verdict with its
reason, tickets; in iTop's timezone, labelled; by series and count; as table, JSON and CSV."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from check_itop_backup.history import ENV_VAR, MIGRATIONS
from tests.backup.test_run import execute, run_cli, write_itop
from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check
from tests.cli.test_check_tickets import write_params

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # the Thursday 23:30 backup is due
SIZE = ITOP_ARCHIVE.stat().st_size


def history_cli(*argv: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main;"
                           "backup_main()", "history", *map(str, argv)], capture_output=True, text=True,
                          timeout=60, env=env)


def as_json(*argv: object) -> list[dict]:
    done = history_cli(*argv, "--format", "json")
    assert (done.returncode, done.stderr) == (0, "")
    return json.loads(done.stdout)


def probe(directory: Path, history: Path, now: datetime, *extra: object):
    return run_check("-f", directory / "__DB__-%Y-%m-%d", "--db-name", "itop", "--timezone", "Europe/Paris",
                     "--now", now.isoformat(), "--history", history, *extra)


@pytest.fixture
def story(tmp_path, fake_itop) -> Path:
    """Four probes with --verify dump and tickets over two days: OK, OK again, CRITICAL (the
    backup of the 27th is missing: an Incident is opened), OK again (it came: recovered)."""
    fake_itop.users["rest"] = "S3cret-pw!"
    history = tmp_path / "history.sqlite"
    params = write_params(tmp_path, fake_itop.url)
    place_archive(tmp_path / "itop-2026-11-26.tar.gz", datetime(2026, 11, 26, 23, 40, tzinfo=PARIS))
    states = [probe(tmp_path, history, NOW, "--verify", "dump", "--param-file", params).exit_code,
              probe(tmp_path, history, NOW + timedelta(minutes=5), "--verify", "dump",
                    "--param-file", params).exit_code,
              probe(tmp_path, history, NOW + timedelta(days=1), "--verify", "dump",
                    "--param-file", params).exit_code]
    place_archive(tmp_path / "itop-2026-11-27.tar.gz", NOW + timedelta(days=1, minutes=10))
    states.append(probe(tmp_path, history, NOW + timedelta(days=1, minutes=15), "--verify", "dump",
                        "--param-file", params).exit_code)
    assert states == [0, 0, 2, 0]
    return history


def test_every_verification_change_of_verdict_and_ticket_is_shown_in_itops_timezone(story, tmp_path):
    events = as_json("--history", story, "--timezone", "Europe/Paris")

    assert [(e["time"], e["event"], e["state"]) for e in events] == [
        ("2026-11-26T23:40:00+01:00", "archive", "ok"),
        ("2026-11-27T10:00:00+01:00", "verification", "ok"),
        ("2026-11-27T10:00:00+01:00", "verdict", "ok"),
        ("2026-11-28T10:00:00+01:00", "verdict", "critical"),
        ("2026-11-28T10:00:00+01:00", "ticket", "opened"),
        ("2026-11-28T10:10:00+01:00", "archive", "ok"),
        ("2026-11-28T10:15:00+01:00", "verification", "ok"),
        ("2026-11-28T10:15:00+01:00", "verdict", "ok"),
        ("2026-11-28T10:15:00+01:00", "ticket", "recovered"),
    ]
    assert {e["timezone"] for e in events} == {"Europe/Paris"}
    assert {e["series"] for e in events} == {f"{tmp_path}/itop-%Y-%m-%d.tar.gz"}
    verification, critical, opened = events[1], events[3], events[4]
    assert verification["detail"].startswith("dump: ")
    assert verification["archive"] == f"{tmp_path}/itop-2026-11-26.tar.gz"
    assert critical["detail"] == ("itop-2026-11-27.tar.gz is missing (backup due Fri 2026-11-27 23:30); "
                                  "newest is itop-2026-11-26.tar.gz, 1d 10h old")
    assert opened["detail"] == "I-000001: Backup check failed"
    assert (events[5]["size"], events[5]["change"], events[5]["change_percent"]) == (SIZE, 0, 0.0)


def test_a_verdict_is_one_row_per_change_not_per_probe(story):
    with contextlib.closing(sqlite3.connect(story)) as connection:
        rows = connection.execute("SELECT state, causes FROM verdicts ORDER BY id").fetchall()

    assert rows == [("ok", ""), ("critical", "archive"), ("ok", "")]  # four probes, three changes


def test_the_table_labels_the_timezone_and_shows_exact_bytes(story, tmp_path):
    config = tmp_path / "conf" / "production" / "config-itop.php"
    config.parent.mkdir(parents=True)
    config.write_text("<?php\n$MySettings = array('db_name' => 'itop', 'timezone' => 'America/New_York');\n")

    table = history_cli("--history", story, "--itop-config", config)

    assert (table.returncode, table.stderr) == (0, "")
    lines = table.stdout.splitlines()
    assert lines[0] == f"series {tmp_path}/itop-%Y-%m-%d.tar.gz"
    assert lines[1].split("  ")[0] == "TIME (America/New_York)"
    assert lines[2].split() == ["2026-11-26", "17:40:00", "archive", "ok", str(SIZE), "-", "-",
                                "itop-2026-11-26.tar.gz"]
    assert lines[7].split()[:7] == ["2026-11-28", "04:10:00", "archive", "ok", str(SIZE), "+0", "(+0.0%)"]
    assert lines[5].split(None, 7)[2:] == ["verdict", "critical", "-", "-", "-",
                                           "itop-2026-11-27.tar.gz is missing (backup due Fri 2026-11-27 "
                                           "23:30); newest is itop-2026-11-26.tar.gz, 1d 10h old"]


def test_without_a_timezone_times_are_local_and_labelled_so(story):
    env = {**os.environ, "TZ": "Asia/Tokyo"}

    table = history_cli("--history", story, env=env)
    listed = history_cli("--history", story, "--format", "csv", env=env)

    assert table.stdout.splitlines()[1].startswith("TIME (local, JST)  ")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert (rows[0]["time"], rows[0]["timezone"]) == ("2026-11-27T07:40:00+09:00", "local, JST")


def test_csv_has_one_row_per_event_with_the_json_fields(story):
    listed = history_cli("--history", story, "--format", "csv", "--timezone", "UTC")

    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert listed.returncode == 0
    assert [(r["time"], r["event"], r["size"]) for r in rows[:2]] == [
        ("2026-11-26T22:40:00+00:00", "archive", str(SIZE)),
        ("2026-11-27T09:00:00+00:00", "verification", "")]
    assert list(rows[0]) == list(as_json("--history", story)[0])


def test_series_and_count_filter_the_events(tmp_path):
    history = tmp_path / "history.sqlite"
    for name in ("paris", "lyon"):
        directory = tmp_path / name
        place_archive(directory / "itop-2026-11-26.tar.gz", datetime(2026, 11, 26, 23, 40, tzinfo=PARIS))
        assert probe(directory, history, NOW).exit_code == 0
        assert probe(directory, history, NOW + timedelta(days=1)).exit_code == 2

    everything = as_json("--history", history)
    lyon = as_json("--history", history, "--series", "/lyon/")
    newest = as_json("--history", history, "-n", "2")

    assert len(everything) == 6
    assert [(e["event"], e["state"]) for e in lyon] == [("archive", "ok"), ("verdict", "ok"),
                                                        ("verdict", "critical")]
    assert {e["series"] for e in lyon} == {f"{tmp_path}/lyon/itop-%Y-%m-%d.tar.gz"}
    assert [(Path(e["series"]).parent.name, e["state"]) for e in newest] == [
        ("lyon", "ok"), ("lyon", "critical"), ("paris", "ok"), ("paris", "critical")]
    assert history_cli("--history", history, "--series", "nowhere").stdout == "(nothing recorded yet)\n"


def next_second() -> None:
    """Sleep into the next second of the clock (not a whole second)."""
    time.sleep(1.01 - time.time() % 1)


def test_a_history_written_only_by_the_runner_shows_its_runs(tmp_path, mariadb_database, capsys):
    settings, database = mariadb_database
    execute(settings, database, "CREATE TABLE ticket (id INT PRIMARY KEY, title VARCHAR(80))",
            "INSERT INTO ticket VALUES (1, 'first')")
    config = write_itop(tmp_path / "itop", settings, database)
    history = tmp_path / "h.sqlite"
    target = f"{tmp_path}/backups/__DB__-%Y-%m-%d_%H_%M_%S"
    (tmp_path / "wrong").write_text("not-the-password\n")

    first = run_cli("--itop-config", str(config), "-f", target, "--history", str(history))
    next_second()  # the archive names hold the second, and a run never replaces an archive
    failed = run_cli("--itop-config", str(config), "-f", target, "--history", str(history),
                     "--db-password-file", str(tmp_path / "wrong"))
    execute(settings, database, "INSERT INTO ticket VALUES (2, 'second, a longer title')")
    next_second()
    second = run_cli("--itop-config", str(config), "-f", target, "--history", str(history))
    capsys.readouterr()
    events = as_json("--history", history, "--itop-config", config)
    table = history_cli("--history", history, "--itop-config", config)

    assert (first, failed, second) == (0, 1, 0)
    assert [(e["event"], e["state"]) for e in events] == [("run", "ok"), ("run", "failed"), ("run", "ok")]
    sizes = [os.path.getsize(e["archive"]) for e in (events[0], events[2])]
    assert [e["size"] for e in events] == [sizes[0], None, sizes[1]]
    assert events[2]["change"] == sizes[1] - sizes[0]
    assert "Access denied" in events[1]["detail"] and "\n" not in events[1]["detail"]
    assert all(e["duration"] >= 0 for e in events) and events[1]["archive"] is None
    assert {e["timezone"] for e in events} == {"Europe/Paris"}
    assert "no archive recorded" not in table.stdout
    assert [line.split()[2:4] for line in table.stdout.splitlines()[2:]] == [
        ["run", "ok"], ["run", "failed"], ["run", "ok"]]


def test_an_older_history_read_only_is_listed_as_it_is_and_a_writable_one_is_migrated(tmp_path):
    history = tmp_path / "history.sqlite"
    with contextlib.closing(sqlite3.connect(history)) as connection:
        connection.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        connection.execute("INSERT INTO runs (series, started, finished, archive_path, size, status, message)"
                           " VALUES ('s', 1, 3, '/b/a.tar.gz', 10, 'ok', 'dump 20 bytes')")
        connection.commit()

    def version() -> int:
        with contextlib.closing(sqlite3.connect(history)) as connection:
            return connection.execute("PRAGMA user_version").fetchone()[0]

    subprocess.run(["chattr", "+i", str(history)], check=True)  # nobody may write it, root neither
    try:
        read_only = as_json("--history", history)
    finally:
        subprocess.run(["chattr", "-i", str(history)], check=True)
    old_version = version()
    migrated = as_json("--history", history)

    assert [(e["event"], e["size"], e["duration"]) for e in read_only] == [("run", 10, 2)]
    assert (old_version, migrated, version()) == (1, read_only, len(MIGRATIONS))


@pytest.fixture(scope="module")
def history_of_module_fixtures() -> str:
    return os.environ.get(ENV_VAR, "")


def test_fixtures_set_up_before_a_test_get_a_private_history_too(history_of_module_fixtures, tmp_path):
    # A module-scoped fixture runs before the per-test history is set: it used to probe with
    # the real /var/lib/check_itop_backup/history.sqlite (tests/cli/test_hostile_archives.py).
    assert history_of_module_fixtures.startswith(str(tmp_path.parent))
    assert not history_of_module_fixtures.startswith("/var/lib")
