"""``itop-backup restore`` and the ``restore`` verification level against the real MariaDB."""

from __future__ import annotations

import gzip
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid

import pymysql
import pytest

from check_itop_backup.cli.backup import backup_main
from tests.archive_corpus import itop_tar, member
from tests.backup.test_run import checksums, execute, populate, write_itop
from tests.checkrun import run_check
from tests.conftest import ITOP_ARCHIVE
from tests.proc import Process, parents, processes

BACKUP = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()"]
PASSWORD = "r3st'o\"re #pw\\ x"


def cli(*argv):
    with pytest.raises(SystemExit) as exited:
        backup_main([str(arg) for arg in argv])
    return exited.value.code


def server_options(settings):
    return ("--db-host", f"{settings['host']}:{settings['port']}", "--db-user", settings["user"])


def databases(settings, prefix):
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return {row[0] for row in cursor.fetchall() if row[0].startswith(prefix)}


@pytest.fixture
def run_tokens(monkeypatch):
    """The tokens (uuid4 hex[:16], database/server.py's new_token) of the runs made in this
    process during the test: their scratch databases are named after them."""
    made = []
    real = uuid.uuid4

    def recording():
        value = real()
        made.append(value.hex[:16])
        return value

    monkeypatch.setattr(uuid, "uuid4", recording)
    return made


def scratch_left(settings, tokens):
    """The scratch databases of the runs with *tokens* still on the server (other tests' runs
    may hold or leave theirs meanwhile: they are not counted)."""
    left = databases(settings, "cib_scratch_") | databases(settings, "cib_restore_")
    return {name for name in left if name.rsplit("_", 1)[1] in tokens}


@pytest.fixture
def runner_archive(tmp_path, mariadb_database):
    """A populated database (tables, a view, a trigger) and its archive made by ``itop-backup run``."""
    settings, database = mariadb_database
    populate(settings, database)
    config = write_itop(tmp_path / "source", settings, database)
    assert cli("run", "--itop-config", config, "-f", tmp_path / "backups" / "b",
               "--history", tmp_path / "h.sqlite") == 0
    return settings, database, tmp_path / "backups" / "b.tar.gz"


def tiny_dump(extra: str = "") -> bytes:
    return ("-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\nDROP TABLE IF EXISTS `t`;\n"
            "CREATE TABLE `t` (id INT PRIMARY KEY, name VARCHAR(20));\n"
            "INSERT INTO `t` VALUES (1,'a(b'),(2,'it\\'s');\n" + extra
            + "-- Dump completed on 2026-11-26 10:07:01\n").encode()


def write_archive(path, tar: bytes):
    path.write_bytes(gzip.compress(tar))
    return path


def test_a_runner_archive_restores_every_table_identically_with_its_files(runner_archive, new_database,
                                                                         tmp_path, capsys, run_tokens):
    settings, source, archive = runner_archive
    root = tmp_path / "restored-itop"
    (root / "data" / "production-modules" / "stale").mkdir(parents=True)

    status = cli("restore", archive, *server_options(settings), "--db-name", new_database,
                 "--itop-root", root)

    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert checksums(settings, new_database) == checksums(settings, source)
    assert f"into {new_database}: 2 tables, 1 views, 1 triggers" in out
    with pymysql.connect(**settings, database=new_database) as connection, connection.cursor() as cursor:
        cursor.execute("INSERT INTO ticket (title) VALUES ('fired')")  # the trigger was re-created
        cursor.execute("SELECT note FROM audit ORDER BY id DESC LIMIT 1")
        assert cursor.fetchone() == ("created fired",)
        cursor.execute("SELECT COUNT(*) FROM titles")
        assert cursor.fetchone() == (301,)
    config = root / "conf" / "production" / "config-itop.php"
    assert stat.S_IMODE(config.stat().st_mode) == 0o440
    assert f"'db_name' => '{source}'" in config.read_text()
    assert (root / "data" / "production.delta.xml").read_text() == "<itop_design/>\n"
    assert (root / "data" / "production-modules" / "mymod" / "module.mymod.php").exists()
    assert not (root / "data" / "production-modules" / "stale").exists()
    assert (root / "collectors" / "ldap" / "conf" / "params.local.xml").read_text() == "<parameters/>\n"
    assert sorted(p.name for p in (root / "data").iterdir()) == ["production-modules", "production.delta.xml"]
    assert "run the setup again" in out and "web server user" in out
    assert run_tokens and not scratch_left(settings, run_tokens)


def test_a_runner_archive_passes_the_restore_level_against_its_manifest(runner_archive, capsys, run_tokens):
    settings, _, archive = runner_archive

    status = cli("verify", archive, "--level", "restore", *server_options(settings))

    out = capsys.readouterr().out
    assert status == 0
    assert "OK at restore level" in out
    assert "2 tables, 600 rows, matching the manifest" in out  # 300 tickets, 300 audit rows (the trigger)
    assert run_tokens and not scratch_left(settings, run_tokens)


def test_the_real_itop_archive_restores_and_passes_the_restore_level(mariadb_server, new_database, capsys):
    status = cli("restore", ITOP_ARCHIVE, *server_options(mariadb_server), "--db-name", new_database)
    assert status == 0
    with pymysql.connect(**mariadb_server, database=new_database) as connection, \
            connection.cursor() as cursor:
        cursor.execute("SELECT login FROM priv_user ORDER BY id")
        assert cursor.fetchall() == (("admin",), ("rest",))
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                       (new_database,))
        assert cursor.fetchone() == (220,)
    capsys.readouterr()

    status = cli("verify", ITOP_ARCHIVE, "--level", "restore", *server_options(mariadb_server))

    out = capsys.readouterr().out
    assert status == 0
    assert "220 tables, 1616 rows, matching the dump's statements" in out


def test_a_non_empty_target_is_refused_intact_and_replaced_with_force(runner_archive, mariadb_database,
                                                                     capsys):
    settings, source, archive = runner_archive
    execute(settings, source, "DELETE FROM ticket WHERE id > 10", "CREATE TABLE other (id INT)",
            "INSERT INTO other VALUES (7)")
    changed = checksums(settings, source)

    status = cli("restore", archive, *server_options(settings), "--db-name", source)

    assert status == 1
    assert f"database {source} has 4 tables (audit, other, ticket, titles): give --force" \
           in capsys.readouterr().err
    assert checksums(settings, source) == changed

    status = cli("restore", archive, *server_options(settings), "--db-name", source, "--force")

    assert status == 0
    restored = checksums(settings, source)
    assert restored["other"] == changed["other"]
    assert restored["ticket"] != changed["ticket"]
    assert f"warning: 1 table(s) of {source} not in the dump were left as they are: other" \
        in capsys.readouterr().err
    with pymysql.connect(**settings, database=source) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM ticket")
        assert cursor.fetchone() == (300,)
        cursor.execute("SHOW TABLES")
        assert sorted(row[0] for row in cursor.fetchall()) == ["audit", "other", "ticket", "titles"]


def fake_client(tmp_path, script: str):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mysql").write_text("#!/bin/sh\n" + script)
    (bindir / "mysql").chmod(0o755)
    return bindir


def test_a_truncated_archive_is_refused_before_any_statement_runs(runner_archive, new_database, tmp_path,
                                                                  capsys):
    settings, _, archive = runner_archive
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:-5000])
    bindir = fake_client(tmp_path, f"touch {tmp_path}/client-ran\n")

    status = cli("restore", truncated, *server_options(settings), "--db-name", new_database,
                 "--mysql-bindir", bindir)

    assert status == 1
    assert "does not verify, nothing was touched: gzip stream truncated" in capsys.readouterr().err
    assert not (tmp_path / "client-ran").exists()
    assert databases(settings, new_database) == set()


def test_a_traversal_member_is_never_written_outside_the_itop_root(mariadb_server, new_database, tmp_path,
                                                                   capsys):
    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "collectors").symlink_to(outside)
    climbing = write_archive(tmp_path / "climb.tar.gz", itop_tar(
        dump=tiny_dump(), extra=(member("../escaped.txt", b"x"),)))
    linked = write_archive(tmp_path / "linked.tar.gz", itop_tar(
        dump=tiny_dump(), extra=(member("collectors/escaped.txt", b"x"),)))

    assert cli("restore", climbing, *server_options(mariadb_server), "--db-name", new_database,
               "--itop-root", root) == 1
    assert "climbs out of the target directory" in capsys.readouterr().err
    assert cli("restore", linked, *server_options(mariadb_server), "--db-name", new_database,
               "--itop-root", root) == 1

    assert "is a symbolic link: not followed" in capsys.readouterr().err
    assert not (tmp_path / "escaped.txt").exists()
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (root / "data").iterdir()) == []  # no staging left, no .maintenance


def test_a_failing_dump_names_its_statement_leaves_the_target_and_drops_the_scratch(
        mariadb_server, mariadb_database, tmp_path, capsys):
    settings, target = mariadb_database
    execute(settings, target, "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO t VALUES (9, 'x')")
    before = checksums(settings, target)
    broken = write_archive(tmp_path / "broken.tar.gz",
                           itop_tar(dump=tiny_dump("INSERT INTO `nope` VALUES (1);\n")))
    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)

    status = cli("restore", broken, *server_options(settings), "--db-name", target, "--force",
                 "--itop-root", root)

    err = capsys.readouterr().err
    assert status == 1
    failed = re.search(r"statement at line 6 of itop-dump.sql failed with error 1146 \(Table "
                       r"'(cib_restore_\w+)\.nope' doesn't exist\): INSERT INTO `nope` VALUES \(1\);$",
                       err.strip())
    assert failed
    assert checksums(settings, target) == before
    assert list((root / "data").iterdir()) == []  # maintenance file and staging removed

    status = cli("verify", broken, "--level", "restore", *server_options(settings))

    err = capsys.readouterr().err
    assert status == 1
    assert "CRITICAL: does not restore: statement at line 6" in err
    tested = re.search(r"'(cib_scratch_\w+)\.nope'", err)
    assert tested
    # each run's own scratch database is gone (other tests' runs may hold theirs meanwhile)
    left = databases(settings, "cib_restore_") | databases(settings, "cib_scratch_")
    assert not {failed[1], tested[1]} & left


def process_running(marker: str, ancestor: int) -> dict[int, Process]:
    """The descendants of *ancestor* whose command line holds *marker* (other tests run beside)."""
    found, parent_of = processes(marker), parents()

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parent_of.get(pid, 0)
            if pid == ancestor:
                return True
        return False

    return {pid: seen for pid, seen in found.items() if descends(pid)}


@pytest.fixture
def password_user(mariadb_server):
    user = f"cib_r_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        cursor.execute(f"GRANT ALL ON *.* TO '{user}'@'%'")
    yield user
    execute(mariadb_server, None, f"DROP USER '{user}'@'%'")


def test_sigterm_mid_load_drops_the_scratch_and_the_password_is_on_no_command_line(
        runner_archive, password_user, tmp_path):
    settings, _, archive = runner_archive
    env = dict(os.environ, ITOP_BACKUP_DB_PASSWORD=PASSWORD)
    process = subprocess.Popen([*BACKUP, "verify", str(archive), "--level", "restore",
                                "--db-host", f"{settings['host']}:{settings['port']}",
                                "--db-user", password_user,
                                "--mysql-bindir", str(stalling_client(tmp_path))], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    clients, scratch = loading_clients(process)
    for seen in clients.values():
        assert PASSWORD.encode() not in b"\0".join(seen.argv)
        assert PASSWORD.encode() not in seen.environ
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        while time.monotonic() < deadline:  # mid-load: some tables are there
            cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                           (scratch,))
            if cursor.fetchone()[0]:
                break
            time.sleep(0.1)

    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 1
    assert f"terminated by SIGTERM while loading b.tar.gz into {scratch}" in err
    assert scratch not in databases(settings, "cib_scratch_")
    assert wait_until_gone(clients) == []


def mysql_client() -> str:
    """The path of the real mysql client (mariadb or mysql)."""
    return subprocess.run(["sh", "-c", "command -v mariadb || command -v mysql"], capture_output=True,
                          text=True, check=True).stdout.strip()


def stalling_client(tmp_path):
    """A bin directory whose mysql client takes the first 20 kB of the dump, then stalls for a minute."""
    client = mysql_client()
    return fake_client(tmp_path, f'[ "$2" = --help ] && exec "{client}" "$@"\n'
                                 f'( head -c 20000; sleep 60 ) | "{client}" "$@"\n')


def loading_clients(process, seconds=20.0):
    """Wait for *process* to start the real mysql client (the wrapper script and its forks carry
    the same arguments, but only an exec'd client has its final ones); return every process
    carrying them, as read then, and the database loaded."""
    client = os.path.realpath(mysql_client())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        clients = process_running("--database=cib_", process.pid)
        loading = [seen for seen in clients.values() if seen.exe == client]
        if loading:
            [database] = [arg.split(b"=", 1)[1].decode() for arg in loading[0].argv
                          if arg.startswith(b"--database=")]
            return clients, database
        time.sleep(0.05)
    raise AssertionError("the client never started")


def probe_config(tmp_path, server_settings):
    """A config-itop.php naming the test server (the probe's test restores use it)."""
    config = tmp_path / "config-itop.php"
    server = f"{server_settings['host']}:{server_settings['port']}"
    config.write_text(f"<?php\n$MySettings = array('db_host' => '{server}', 'db_user' => "
                      f"'{server_settings['user']}', 'db_pwd' => '{server_settings['password']}', "
                      "'db_name' => 'itop');\n")
    return config


def wait_until_gone(pids, seconds=5.0):
    """Return the *pids* still alive (zombies waiting for their reaper count as gone) after *seconds*."""
    until = time.monotonic() + seconds
    while True:
        alive = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    if handle.read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(pid)
            except OSError:
                continue
        if not alive or time.monotonic() > until:
            return alive
        time.sleep(0.1)


def test_the_probe_verifies_at_restore_level_with_a_scratch_database(mariadb_server, tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    written = datetime(2026, 11, 26, 23, 34, tzinfo=ZoneInfo("Europe/Paris"))
    archive = write_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", itop_tar(dump=tiny_dump()))
    os.utime(archive, (written.timestamp(), written.timestamp()))
    config = probe_config(tmp_path, mariadb_server)

    run = run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                    "--timezone", "Europe/Paris",
                    "--now", "2026-11-27T10:00:00+01:00", "--itop-config", config, "--verify", "restore")

    assert run.exit_code == 0, run.stdout
    assert "restore level verified" in run.status_line
