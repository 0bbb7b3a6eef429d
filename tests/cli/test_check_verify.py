"""The probe's deep verification as a monitoring system sees it: --verify, its cache, table sets."""

from __future__ import annotations

import io
import os
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from check_itop_backup.archive import inspect
from tests.archive_corpus import gzip_members, itop_member, itop_tar
from tests.checkrun import place_archive, run_check

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # judges the Thursday 26th 23:30 backup
WRITTEN = datetime(2026, 11, 26, 23, 34, tzinfo=PARIS)
NAME = "itop-2026-11-26_23_30.tar.gz"
OK_PREFIX = f"ITOP_BACKUP OK - {NAME}: 10h 26m old, "


def check(tmp_path: Path, *extra: str, now: datetime = NOW):
    return run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                     "--timezone", "Europe/Paris", "--now", now.isoformat(), *extra)


def place(path: Path, data: bytes, mtime: datetime = WRITTEN) -> Path:
    path.write_bytes(data)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def test_the_real_archive_verified_to_dump_level_is_ok_and_says_when(tmp_path):
    place_archive(tmp_path / NAME, WRITTEN)

    run = check(tmp_path, "--verify", "dump")

    assert run.exit_code == 0
    assert run.status_line == (OK_PREFIX + "1.1 MiB, learning size history (0/3), "
                               "dump level verified Fri 2026-11-27 10:00")


def test_a_truncated_dump_is_critical_with_the_reason_in_the_status_line(tmp_path):
    place(tmp_path / NAME, gzip_members(itop_tar(dump=itop_member("itop-dump.sql")[:1 << 20])))

    run = check(tmp_path, "--verify", "dump")

    assert run.exit_code == 2
    assert run.status_line == (f"ITOP_BACKUP CRITICAL - {NAME} fails dump verification: itop-dump.sql "
                               "ends without the mysqldump completion trailer: dump truncated at 1.0 MiB")


def test_the_archive_level_does_not_look_inside_the_dump(tmp_path):
    place(tmp_path / NAME, gzip_members(itop_tar(dump=itop_member("itop-dump.sql")[:1 << 20])))

    run = check(tmp_path, "--verify", "archive")

    assert run.exit_code == 0
    assert run.status_line.endswith(", archive level verified Fri 2026-11-27 10:00")


def test_a_corrupt_gzip_stream_is_critical_at_archive_level(tmp_path):
    data = bytearray(place_archive(tmp_path / NAME, WRITTEN).read_bytes())
    data[len(data) // 2] ^= 0xFF
    place(tmp_path / NAME, bytes(data))

    run = check(tmp_path, "--verify", "archive")

    assert run.exit_code == 2
    assert run.status_line.startswith(f"ITOP_BACKUP CRITICAL - {NAME} fails archive verification: "
                                      "gzip stream corrupt after byte ")


def corrupt_in_place(path: Path) -> None:
    """Damage the archive without changing its identity (size, mtime, inode)."""
    stat = path.stat()
    with open(path, "r+b") as archive:
        archive.seek(stat.st_size // 2)
        byte = archive.read(1)
        archive.seek(stat.st_size // 2)
        archive.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_an_archive_is_verified_once_and_the_cached_result_reused(tmp_path):
    path = place_archive(tmp_path / NAME, WRITTEN)
    assert check(tmp_path, "--verify", "dump").exit_code == 0
    corrupt_in_place(path)

    run = check(tmp_path, "--verify", "dump", "-vv", now=NOW + timedelta(minutes=5))

    assert run.exit_code == 0
    assert run.status_line.endswith(", dump level verified Fri 2026-11-27 10:00")
    assert f"{path}: dump-level verification from 5m 0s ago (cached)" in run.long_output


def test_verify_every_verifies_an_archive_again_once_the_cached_result_is_older(tmp_path):
    path = place_archive(tmp_path / NAME, WRITTEN)
    assert check(tmp_path, "--verify", "dump").exit_code == 0
    corrupt_in_place(path)

    cached = check(tmp_path, "--verify", "dump", "--verify-every", "1h", now=NOW + timedelta(minutes=30))
    again = check(tmp_path, "--verify", "dump", "--verify-every", "1h", now=NOW + timedelta(hours=2))

    assert cached.exit_code == 0
    assert again.exit_code == 2
    assert again.status_line.startswith(f"ITOP_BACKUP CRITICAL - {NAME} fails dump verification: "
                                        "gzip stream corrupt")


def test_a_table_that_vanished_since_the_previous_verified_archive_is_a_warning(tmp_path):
    place_archive(tmp_path / "itop-2026-11-25_23_30.tar.gz", WRITTEN - timedelta(days=1))
    assert check(tmp_path, "--verify", "dump", now=NOW - timedelta(days=1)).exit_code == 0
    renamed = itop_member("itop-dump.sql").replace(b"\nCREATE TABLE `brand` (", b"\nCREATE TABLE `brand2` (")
    place(tmp_path / NAME, gzip_members(itop_tar(dump=renamed)))

    run = check(tmp_path, "--verify", "dump")

    assert run.exit_code == 1
    assert run.status_line == (f"ITOP_BACKUP WARNING - {NAME}: 1 table vanished since "
                               "itop-2026-11-25_23_30.tar.gz: brand")


class _StallingArchive(io.FileIO):
    """An archive on a stalled disk: past its magic number, a read does not return for a minute."""

    def read(self, size: int = -1) -> bytes:
        if self.tell() >= 4:
            time.sleep(60)
        return super().read(size)


def test_a_timeout_while_verifying_is_unknown_naming_the_stage_and_caches_nothing(tmp_path, monkeypatch):
    place_archive(tmp_path / NAME, WRITTEN)
    monkeypatch.setattr(inspect, "open", lambda path, mode, buffering=-1: _StallingArchive(path, mode),
                        raising=False)

    started = time.monotonic()
    timed_out = check(tmp_path, "--verify", "dump", "--timeout", "0.5")

    assert time.monotonic() - started < 30  # the alarm ended the stalled read
    assert timed_out.exit_code == 3
    assert timed_out.stdout == (f"ITOP_BACKUP UNKNOWN - timed out after 0.5s while verifying {NAME} "
                                "at dump level\n")
    with sqlite3.connect(tmp_path / "history.sqlite") as history:
        assert history.execute("SELECT COUNT(*) FROM verifications").fetchone() == (0,)


def itop_config(path: Path, settings: dict, database: str) -> Path:
    host = f"{settings['host']}:{settings['port']}"
    path.write_text(f"""<?php
$MySettings = array(
    'db_host' => '{host}', 'db_user' => '{settings['user']}', 'db_pwd' => '{settings['password']}',
    'db_name' => '{database}', 'db_subname' => '',
);
""")
    return path


def test_compare_live_db_warns_about_a_live_table_missing_from_the_dump(tmp_path, mariadb_database):
    import pymysql

    settings, database = mariadb_database
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE brand (id INT PRIMARY KEY)")
        cursor.execute("CREATE TABLE zz_new_module (id INT PRIMARY KEY)")
        cursor.execute("CREATE VIEW view_brand AS SELECT id FROM brand")
    place_archive(tmp_path / NAME, WRITTEN)
    config = itop_config(tmp_path / "config-itop.php", settings, database)

    # no --db-name: it would name the live database too (options win over the config)
    run = run_check("-f", tmp_path / "itop-%Y-%m-%d_%H_%M", "--timezone", "Europe/Paris", "--now",
                    NOW.isoformat(), "--verify", "dump", "--compare-live-db", "--itop-config", config)

    assert run.exit_code == 1
    assert run.status_line == (f"ITOP_BACKUP WARNING - {NAME}: 1 table of the live database missing "
                               "from the dump: zz_new_module")


def test_compare_live_db_with_an_unreachable_database_is_a_warning_not_a_verdict_change(tmp_path):
    place_archive(tmp_path / NAME, WRITTEN)
    unreachable = {"host": "127.0.0.1", "port": 1, "user": "root", "password": ""}
    config = itop_config(tmp_path / "config-itop.php", unreachable, "itop")

    run = check(tmp_path, "--verify", "dump", "--compare-live-db", "--itop-config", config)

    assert run.exit_code == 1
    assert run.status_line.startswith(f"ITOP_BACKUP WARNING - {NAME}: cannot compare with the live "
                                      "database: cannot connect to the database server 127.0.0.1:1")


def test_compare_live_db_without_dump_level_is_a_usage_error(tmp_path):
    run = check(tmp_path, "--verify", "archive", "--compare-live-db")

    assert (run.exit_code, run.stdout) == (3, "ITOP_BACKUP UNKNOWN - --compare-live-db needs --verify dump\n")


def test_an_unknown_level_is_a_usage_error(tmp_path):
    run = check(tmp_path, "--verify", "everything")

    assert run.exit_code == 3
    assert run.status_line.startswith(
        "ITOP_BACKUP UNKNOWN - bad arguments: argument --verify: invalid choice: 'everything'")


def test_json_output_carries_the_verification_as_one_line(tmp_path):
    import json

    place(tmp_path / NAME, gzip_members(itop_tar(dump=itop_member("itop-dump.sql")[:1 << 20])))

    run = check(tmp_path, "--verify", "dump", "--format", "json")

    report = json.loads(run.stdout)
    assert (run.exit_code, report["state"]) == (0, "CRITICAL")
    assert report["verification"] == (
        "archive level reached, critical: itop-dump.sql ends without the mysqldump completion "
        "trailer: dump truncated at 1.0 MiB")


def test_compare_live_db_lists_the_database_of_the_options_without_a_config(tmp_path, mariadb_database):
    import pymysql

    settings, database = mariadb_database
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE brand (id INT PRIMARY KEY)")
        cursor.execute("CREATE TABLE zz_new_module (id INT PRIMARY KEY)")
    place_archive(tmp_path / NAME, WRITTEN)

    run = run_check("-f", tmp_path / "itop-%Y-%m-%d_%H_%M", "--timezone", "Europe/Paris", "--now",
                    NOW.isoformat(), "--verify", "dump", "--compare-live-db", "--db-name", database,
                    "--db-host", f"{settings['host']}:{settings['port']}", "--db-user", settings["user"])

    assert run.exit_code == 1, run.stdout
    assert run.status_line == (f"ITOP_BACKUP WARNING - {NAME}: 1 table of the live database missing "
                               "from the dump: zz_new_module")


def test_compare_live_db_without_a_database_name_is_a_usage_error(tmp_path):
    run = run_check("-f", tmp_path / "itop", "--verify", "dump", "--compare-live-db")

    assert (run.exit_code, run.stdout) == (
        3, "ITOP_BACKUP UNKNOWN - --compare-live-db needs --itop-config or --db-name (the live database)\n")
