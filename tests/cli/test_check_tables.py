"""Per-table drift at dump level against the real MariaDB's dumps: the rows of the watched
tables (``--table-shrink``) against the median of the previous verified archives."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pymysql
import pytest

from check_itop_backup.cli.backup import backup_main
from tests.archive_corpus import gzip_members, itop_tar
from tests.checkrun import run_check

PARIS = ZoneInfo("Europe/Paris")


def execute(server, database, *statements, rows=()):
    with pymysql.connect(**server, database=database, charset="utf8mb4") as connection:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            for statement, values in rows:
                cursor.executemany(statement, values)
        connection.commit()


def itop_dump(server, database) -> bytes:
    """The database dumped by the real client with iTop's options (DBBackup::DoBackup)."""
    program = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    return subprocess.run(
        [program, "--opt", "--skip-lock-tables", "--default-character-set=utf8mb4", "--add-drop-database",
         "--single-transaction", f"--host={server['host']}", f"--port={server['port']}",
         f"--user={server['user']}", database],
        check=True, capture_output=True, env=dict(os.environ, MYSQL_PWD=server["password"])).stdout


@pytest.fixture
def instance(mariadb_database):
    """An iTop-shaped database: attachments with BLOBs, tickets, contacts."""
    server, database = mariadb_database
    execute(server, database,
            "CREATE TABLE attachment (id INT PRIMARY KEY AUTO_INCREMENT, item_class VARCHAR(255),"
            " contents_data LONGBLOB, contents_filename VARCHAR(255)) CHARSET utf8mb4",
            "CREATE TABLE ticket (id INT PRIMARY KEY AUTO_INCREMENT, ref VARCHAR(255), description TEXT)",
            "CREATE TABLE contact (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(255))",
            rows=[("INSERT INTO attachment (item_class, contents_data, contents_filename)"
                   " VALUES (%s, %s, %s)",
                   [("UserRequest", os.urandom(2000), f"scan ),( {i}.pdf") for i in range(100)]),
                  ("INSERT INTO ticket (ref, description) VALUES (%s, %s)",
                   [(f"R-{i:06d}", "printer (broken),(again)") for i in range(200)]),
                  ("INSERT INTO contact (name) VALUES (%s)", [(f"Person {i}",) for i in range(50)])])
    return server, database


def archive_of(server, database, directory, day: datetime):
    path = directory / f"itop-{day:%Y-%m-%d}_23_30.tar.gz"
    path.write_bytes(gzip_members(itop_tar(dump=itop_dump(server, database))))  # iTop's shape: one member
    os.utime(path, (day.timestamp(), day.timestamp()))
    return path


def check(directory, day: datetime, *extra: str):
    return run_check("-f", directory / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                     "--timezone", "Europe/Paris", "--now", (day + timedelta(hours=10)).isoformat(),
                     "--verify", "dump", *extra)


def series(instance, directory, days=3):
    """*days* archives of the unchanged database, each judged (and verified) the morning after."""
    server, database = instance
    first = datetime(2026, 11, 22, 23, 34, tzinfo=PARIS)
    for number in range(days):
        day = first + timedelta(days=number)
        archive_of(server, database, directory, day)
        run = check(directory, day)
        assert run.exit_code == 0, run.stdout
        assert "rows_attachment=100;;;0 rows_contact=50;;;0 rows_ticket=200;;;0" in run.perfdata
    return first + timedelta(days=days)


@pytest.mark.parametrize("deleted, state, code", [(30, "CRITICAL", 2), (10, "WARNING", 1)])
def test_attachment_losing_rows_while_the_archive_grows_is_named_with_its_change(
        instance, tmp_path, deleted, state, code):
    """-30 % is past the CRITICAL limit (-20 %), -10 % past the WARNING one (-5 %); the archive
    grows meanwhile (+20 % or so: no size alarm), which a size check alone would call fine."""
    server, database = instance
    day = series(instance, tmp_path)
    execute(server, database, f"DELETE FROM attachment WHERE id <= {deleted}",
            rows=[("INSERT INTO ticket (ref, description) VALUES (%s, %s)",
                   [(f"R-{i:06d}", os.urandom(600).hex()) for i in range(200, 300)])])
    path = archive_of(server, database, tmp_path, day)
    before = tmp_path / f"itop-{day - timedelta(days=1):%Y-%m-%d}_23_30.tar.gz"
    assert path.stat().st_size > before.stat().st_size

    run = check(tmp_path, day, "-v")

    assert run.exit_code == code
    assert run.status_line == (f"ITOP_BACKUP {state} - {path.name}: table attachment has "
                               f"{100 - deleted} rows, -{deleted}% vs median 100 rows of the last 3 "
                               "verified archives")
    assert f"rows_attachment={100 - deleted};;;0 rows_contact=50;;;0 rows_ticket=300;;;0" in run.perfdata
    assert f"table attachment: {100 - deleted} rows, median 100 of 3" in run.long_output


def test_a_watched_table_that_vanished_is_critical_and_a_shrink_below_5_percent_is_ok(instance, tmp_path):
    server, database = instance
    day = series(instance, tmp_path)
    execute(server, database, "DROP TABLE contact", "DELETE FROM attachment WHERE id <= 4")
    path = archive_of(server, database, tmp_path, day)

    run = check(tmp_path, day)

    assert run.exit_code == 2
    assert run.status_line == (f"ITOP_BACKUP CRITICAL - {path.name}: table contact vanished from the dump "
                               "(median 50 rows of the last 3 verified archives); "
                               f"{path.name}: 1 table vanished since itop-2026-11-24_23_30.tar.gz: contact")
    assert "rows_attachment=96;;;0 rows_contact=0;;;0" in run.perfdata


def test_the_shrink_limits_are_options(instance, tmp_path):
    """-10 %: WARNING by default, OK under a 15 % warning limit, CRITICAL under an 8 % critical one."""
    server, database = instance
    day = series(instance, tmp_path)
    execute(server, database, "DELETE FROM attachment WHERE id <= 10")
    path = archive_of(server, database, tmp_path, day)

    default = check(tmp_path, day)
    wider = check(tmp_path, day, "--table-shrink-warning", "15%")
    tighter = check(tmp_path, day, "--table-shrink-warning=2", "--table-shrink-critical=8%")
    crossed = check(tmp_path, day, "--table-shrink-warning", "30", "--table-shrink-critical", "20")
    bad = check(tmp_path, day, "--table-shrink-warning", "-5")

    shrink = (f"{path.name}: table attachment has 90 rows, -10% vs median 100 rows of the last 3 verified "
              "archives")
    assert (default.exit_code, default.status_line) == (1, f"ITOP_BACKUP WARNING - {shrink}")
    assert wider.exit_code == 0, wider.stdout
    assert (tighter.exit_code, tighter.status_line) == (2, f"ITOP_BACKUP CRITICAL - {shrink}")
    assert crossed.exit_code == 3
    assert crossed.status_line == ("ITOP_BACKUP UNKNOWN - --table-shrink-critical must be at least "
                                   "--table-shrink-warning")
    assert bad.exit_code == 3 and "--table-shrink-warning" in bad.status_line


def test_table_shrink_names_the_watched_tables_and_empty_watches_none(instance, tmp_path):
    server, database = instance
    day = series(instance, tmp_path)
    execute(server, database, "DELETE FROM ticket WHERE id <= 100")
    archive_of(server, database, tmp_path, day)

    watched = check(tmp_path, day, "--table-shrink", "ticket")
    none = check(tmp_path, day, "--table-shrink", "")

    assert watched.exit_code == 2
    assert watched.status_line.endswith("table ticket has 100 rows, -50% vs median 200 rows of the last "
                                        "3 verified archives")
    assert "rows_ticket=100;;;0" in watched.perfdata and "rows_attachment" not in watched.perfdata
    assert none.exit_code == 0 and "rows_" not in none.perfdata


def test_history_tables_lists_the_counts_of_an_archives_dump_verification(instance, tmp_path, capsys,
                                                                          private_history):
    series(instance, tmp_path, days=1)
    path = tmp_path / "itop-2026-11-22_23_30.tar.gz"
    capsys.readouterr()

    def history(*argv):
        with pytest.raises(SystemExit) as exited:
            backup_main(["history", "--timezone", "Europe/Paris", *map(str, argv)])
        return exited.value.code, capsys.readouterr()

    status, table = history("--tables", path)
    by_name, listed = history("--tables", path.name, "--format", "json")
    unknown, missing = history("--tables", tmp_path / "nope.tar.gz")

    assert status == 0
    lines = table.out.splitlines()
    assert lines[0] == f"archive {path}: ok, dump level verified 2026-11-23 09:34:00 (Europe/Paris)"
    assert lines[1].split() == ["TABLE", "ROWS", "BYTES"]
    assert [line.split()[:2] for line in lines[2:]] == [["attachment", "100"], ["contact", "50"],
                                                        ["ticket", "200"]]
    assert by_name == 0
    assert [(row["table"], row["rows"]) for row in json.loads(listed.out)] == [
        ("attachment", 100), ("contact", 50), ("ticket", 200)]
    assert all(row["bytes"] > 0 for row in json.loads(listed.out))
    assert unknown == 1
    assert missing.err == (f"itop-backup history: no dump-level verification of {tmp_path / 'nope.tar.gz'} "
                           f"in {private_history}\n")


def test_verifications_stored_before_the_counts_raise_no_alarm(instance, tmp_path, private_history):
    """A history written by the version before: its verifications hold no table_stats."""
    server, database = instance
    day = series(instance, tmp_path)
    with sqlite3.connect(private_history) as history:
        history.execute("UPDATE verifications SET details = json_remove(details, '$.table_stats')")
    execute(server, database, "DELETE FROM attachment WHERE id <= 10")
    archive_of(server, database, tmp_path, day)

    fresh = check(tmp_path, day)  # nothing earlier to compare with: learning, no verdict
    with sqlite3.connect(private_history) as history:
        history.execute("UPDATE verifications SET details = json_remove(details, '$.table_stats')")
    cached = check(tmp_path, day)  # the judged archive's own cached verification has no counts either

    assert fresh.exit_code == 0 and "rows_attachment=90;;;0" in fresh.perfdata
    assert cached.exit_code == 0 and "rows_" not in cached.perfdata


def test_the_runners_manifest_carries_each_tables_rows_and_bytes_which_verification_takes(
        instance, tmp_path, capsys):
    import tarfile

    from check_itop_backup.archive.dumpscan import TableCounter
    from check_itop_backup.archive.inspect import verify_archive
    from tests.backup.test_run import write_itop

    server, database = instance
    config = write_itop(tmp_path / "itop", server, database)
    with pytest.raises(SystemExit) as exited:
        backup_main(["run", "--itop-config", str(config), "-f", f"{tmp_path}/runner/__DB__-%Y-%m-%d_%H_%M",
                     "--history", str(tmp_path / "h.sqlite")])
    assert exited.value.code == 0
    [path] = (tmp_path / "runner").glob("*.tar.gz")
    with tarfile.open(path) as archive:
        dump = archive.extractfile("itop-dump.sql").read()
        manifest = json.loads(archive.pax_headers["comment"])
    counted = TableCounter()
    counted.write(dump, 0, len(dump))

    assert {table["name"]: (table["rows"], table["bytes"]) for table in manifest["tables"]} == {
        name: (rows, counted.sizes[name]) for name, rows in counted.rows.items()} == {
        "attachment": (100, counted.sizes["attachment"]), "contact": (50, counted.sizes["contact"]),
        "ticket": (200, counted.sizes["ticket"])}
    stats = {name: (rows, size) for name, rows, size in verify_archive(str(path)).table_stats}
    assert stats == {table["name"]: (table["rows"], table["bytes"]) for table in manifest["tables"]}
