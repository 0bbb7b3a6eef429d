"""What keeps a dump from loading elsewhere: the lint and the filter, on real MariaDB 10.11 dumps
(``mysqldump`` here is MariaDB's: its first line is the sandbox line) and on MySQL's GTID lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from zoneinfo import ZoneInfo

import pymysql
import pytest

from check_itop_backup.archive.dumpscan import DumpScanner
from check_itop_backup.archive.portability import PortableFilter
from check_itop_backup.archive.sqlguard import SANDBOX_LINE
from check_itop_backup.cli.backup import backup_main
from tests.backup.test_run import populate, write_itop
from tests.checkrun import run_check

PARIS = ZoneInfo("Europe/Paris")


def dump_of(server, database) -> bytes:
    program = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    return subprocess.run(
        [program, "--opt", "--skip-lock-tables", "--default-character-set=utf8mb4", "--single-transaction",
         f"--host={server['host']}", f"--port={server['port']}", f"--user={server['user']}", database],
        check=True, capture_output=True, env=dict(os.environ, MYSQL_PWD=server["password"])).stdout


def filtered(dump: bytes, piece: int = 1000) -> bytes:
    portable = PortableFilter()
    pieces = [portable.feed(dump[at:at + piece]) for at in range(0, len(dump), piece)]
    return b"".join(pieces) + portable.finish()


def findings(dump: bytes) -> list[str]:
    scanner = DumpScanner(with_sha256=False)
    scanner.write(dump, 0, len(dump))
    scanner.close()
    return [kind for kind, _ in scanner.portability.findings()]


@pytest.fixture(scope="module")
def strict_client(tmp_path_factory):
    """A client that refuses the sandbox line as MySQL's and older MariaDB clients do, then the real one."""
    script = tmp_path_factory.mktemp("client") / "mysql"
    real = shutil.which("mariadb") or shutil.which("mysql")
    script.write_text(f"""#!/bin/sh
IFS= read -r first
case "$first" in
  '/*M!999999\\-'*) echo "ERROR at line 1: Unknown command '\\-'." >&2; exit 1;;
esac
{{ printf '%s\\n' "$first"; cat; }} | exec {real} "$@"
""")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def account(mariadb_server):
    """An empty database and an account with every right on it only, as iTop's setup gives its
    user: no SUPER. Yields (user, database)."""
    user, target = f"cib_port_{uuid.uuid4().hex[:8]}", f"cib_test_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{target}`")
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'x'")
        cursor.execute(f"GRANT ALL ON `{target}`.* TO '{user}'@'%'")
    yield user, target
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP USER '{user}'@'%'")
        cursor.execute(f"DROP DATABASE `{target}`")


def load(client, server, user, password, database, dump) -> subprocess.CompletedProcess:
    return subprocess.run([client, "--default-character-set=utf8mb4", "-h", server["host"], "-P",
                           str(server["port"]), "-u", user, database], input=dump, capture_output=True,
                          env=dict(os.environ, MYSQL_PWD=password))


def test_the_filter_on_a_real_mariadb_dump_drops_the_first_line_and_every_definer_and_nothing_else(
        mariadb_server, mariadb_database, account, strict_client):
    server, database = mariadb_database
    populate(server, database)  # a view and a trigger: DEFINER=`root`@`…`
    dump = dump_of(server, database)
    lines = dump.splitlines(keepends=True)
    assert lines[0].startswith(SANDBOX_LINE) and b"DEFINER=" in dump
    assert findings(dump) == ["sandbox", "definer"]

    portable = filtered(dump)

    kept = portable.splitlines(keepends=True)
    assert not kept[0].startswith(SANDBOX_LINE) and b"DEFINER=" not in portable
    assert len(kept) == len(lines) - 1
    assert [a for a, b in zip(lines[1:], kept) if a != b] == [a for a in lines if b"DEFINER=" in a]
    assert findings(portable) == []
    assert filtered(dump, piece=7) == portable == filtered(dump, piece=1 << 20)
    user, target = account
    refused = load(strict_client, server, user, "x", target, dump)
    assert refused.returncode == 1 and refused.stderr == b"ERROR at line 1: Unknown command '\\-'.\n"
    loaded = load(strict_client, server, user, "x", target, portable)
    assert loaded.returncode == 0, loaded.stderr
    with pymysql.connect(**server, database=target) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM titles")
        assert cursor.fetchone() == (300,)
        cursor.execute("SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (target,))
        assert cursor.fetchone()[0].startswith(f"{user}@")  # defined by the loading account


def test_a_definer_of_another_account_needs_super_which_the_portable_dump_does_not(
        mariadb_server, mariadb_database, account):
    server, database = mariadb_database
    populate(server, database)
    dump = dump_of(server, database).split(b"\n", 1)[1]  # without the sandbox line: the definers alone
    client = shutil.which("mariadb") or shutil.which("mysql")
    user, target = account

    refused = load(client, server, user, "x", target, dump)
    loaded = load(client, server, user, "x", target, filtered(dump))

    assert refused.returncode == 1 and b"you need (at least one of) the SUPER" in refused.stderr
    assert loaded.returncode == 0, loaded.stderr


MYSQL_HEAD = (b"-- MySQL dump 10.13  Distrib 8.0.36\n"
              b"/*!40101 SET NAMES utf8mb4 */;\n"
              b"SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;\n"
              b"SET @@SESSION.SQL_LOG_BIN= 0;\n"
              b"\n--\n-- GTID state at the beginning of the backup \n--\n\n"
              b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n"
              b"a7e2c1c4-71ca-11e1-9e33-c80aa9429562:1-77';\n"
              b"CREATE TABLE `t` (\n  `id` int\n) ENGINE=InnoDB DEFAULT CHARSET=latin1;\n"
              b"INSERT INTO `t` VALUES (1),(2);\n"
              b"SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;\n"
              b"-- Dump completed on 2026-12-02 23:31:00\n")


def test_mysqls_gtid_statements_are_found_and_dropped_and_a_latin1_table_named():
    scanner = DumpScanner(with_sha256=False)
    scanner.write(MYSQL_HEAD, 0, len(MYSQL_HEAD))
    scanner.close()

    assert dict(scanner.portability.findings())["gtid"].startswith(
        "the dump holds GTID statements (@MYSQLDUMP_TEMP_LOG_BIN, @@SESSION.SQL_LOG_BIN, "
        "@@GLOBAL.GTID_PURGED)")
    assert "(latin1: table t)" in dict(scanner.portability.findings())["charset"]
    assert filtered(MYSQL_HEAD, piece=5) == (
        b"-- MySQL dump 10.13  Distrib 8.0.36\n/*!40101 SET NAMES utf8mb4 */;\n"
        b"\n--\n-- GTID state at the beginning of the backup \n--\n\n"
        b"CREATE TABLE `t` (\n  `id` int\n) ENGINE=InnoDB DEFAULT CHARSET=latin1;\n"
        b"INSERT INTO `t` VALUES (1),(2);\n-- Dump completed on 2026-12-02 23:31:00\n")


def test_the_runners_portable_archive_loads_with_a_client_refusing_the_sandbox_line_and_lints_clean(
        tmp_path, mariadb_database, strict_client, capsys):
    server, database = mariadb_database
    populate(server, database)
    config = write_itop(tmp_path / "itop", server, database)

    def run(directory, *extra):
        with pytest.raises(SystemExit) as exited:
            backup_main(["run", "--itop-config", str(config), "-f",
                         f"{tmp_path / directory}/__DB__-%Y-%m-%d_%H_%M", "--history",
                         str(tmp_path / "h.sqlite"), *extra])
        assert exited.value.code == 0
        [archive] = (tmp_path / directory).glob("*.tar.gz")
        return archive

    plain, portable = run("plain"), run("portable", "--portable")
    capsys.readouterr()

    import tarfile
    with tarfile.open(portable) as archive:
        dump = archive.extractfile("itop-dump.sql").read()
    assert not dump.startswith(SANDBOX_LINE) and b"DEFINER=" not in dump
    assert dump.rstrip().rsplit(b"\n", 1)[-1].startswith(b"-- Dump completed")
    restored = f"cib_test_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{restored}`")
    try:
        assert load(strict_client, server, server["user"], server["password"], restored, dump).returncode == 0
    finally:
        with pymysql.connect(**server) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{restored}`")

    def probe(archive):
        return run_check("-f", archive.parent / "__DB__-%Y-%m-%d_%H_%M", "--db-name", database,
                         "--settle", "0", "--verify", "dump", "--portable", "--history",
                         str(tmp_path / "probe.sqlite"))

    clean, warned = probe(portable), probe(plain)
    assert clean.exit_code == 0, clean.stdout
    assert warned.exit_code == 1
    assert warned.status_line == (
        f"ITOP_BACKUP WARNING - {plain.name}: the dump starts with MariaDB's sandbox line (/*M!999999\\- "
        "enable the sandbox mode */): MySQL's mysql client and MariaDB clients before 10.5.25, 10.6.18 and "
        f"10.11.8 refuse it (ERROR at line 1: Unknown command '\\-'); {plain.name}: the dump holds DEFINER= "
        "clauses (2 found): loading it as another account needs SUPER (SET_USER_ID on MySQL 8), which "
        "iTop's database user does not have")
