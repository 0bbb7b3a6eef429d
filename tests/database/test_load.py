"""Hostile dumps: nothing in an archive runs on the host, nothing
reaches another database, whichever command loads it."""

from __future__ import annotations

import os
import re
import subprocess
import uuid

import pymysql
import pytest

from tests.archive_corpus import itop_tar
from tests.backup.test_restore import (
    cli,
    databases,
    execute,
    probe_config,
    run_tokens,  # noqa: F401 - a fixture
    scratch_left,
    server_options,
    tiny_dump,
    write_archive,
)
from tests.checkrun import run_check


def tables(settings, database):
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                       (database,))
        return sorted(row[0] for row in cursor.fetchall())


def load_accounts(settings):
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT User FROM mysql.user WHERE User LIKE 'cib\\_load\\_%%'")
        return {row[0] for row in cursor.fetchall()}


def accounts_left(settings, tokens):
    """The load accounts of the runs with *tokens* still on the server (run_tokens)."""
    return {name for name in load_accounts(settings) if name.rsplit("_", 1)[1] in tokens}


@pytest.fixture
def live(mariadb_database):
    """A database standing for the live iTop one: a table with rows another restore must not touch."""
    settings, name = mariadb_database
    execute(settings, name, "CREATE TABLE ticket (id INT PRIMARY KEY, title VARCHAR(40))",
            "INSERT INTO ticket VALUES (1, 'keep me'), (2, 'me too')")
    return settings, name


def rows(settings, database):
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, title FROM ticket ORDER BY id")
        return cursor.fetchall()


COMMANDS = {  # a client command on a line of its own -> the line the refusal names
    "shell": ("\\! touch {pwned}\n", "'\\!' is a command of the mysql client"),
    "system": ("system touch {pwned}\n", "'system' is a command of the mysql client"),
    "source": ("source {pwned}\n", "'source' is a command of the mysql client"),
    "tee": ("\\T {pwned}\n", "'\\T' is a command of the mysql client"),
    "after a statement": ("SET @x = 1; \\! touch {pwned}\n", "'\\!' is a command of the mysql client"),
    "delimiter abuse": ("DELIMITER !\n", "DELIMITER '!': only mysqldump's ;; and ; are accepted"),
}


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_a_client_command_in_the_dump_is_refused_naming_its_line_by_every_level(
        command, mariadb_server, live, tmp_path, capsys, run_tokens):  # noqa: F811
    pwned = tmp_path / "pwned"
    line, reason = COMMANDS[command]
    archive = write_archive(tmp_path / "hostile.tar.gz", itop_tar(dump=tiny_dump(line.format(pwned=pwned))))
    target = f"cib_test_h_{uuid.uuid4().hex[:8]}"

    verified = cli("verify", archive, "--level", "dump")
    verify_err = capsys.readouterr().err
    restored = cli("restore", archive, *server_options(mariadb_server), "--db-name", target)
    restore_err = capsys.readouterr().err
    tested = cli("verify", archive, "--level", "restore", *server_options(mariadb_server))
    test_err = capsys.readouterr().err

    assert (verified, restored, tested) == (1, 1, 1)
    for err in (verify_err, restore_err, test_err):
        assert f"itop-dump.sql holds what a restore must not run, line 6: {reason}" in err, err
        assert "Traceback" not in err
    assert "nothing was touched" in restore_err
    assert not pwned.exists()
    assert run_tokens and not scratch_left(mariadb_server, run_tokens)
    assert target not in databases(mariadb_server, "cib_test_h_")
    assert rows(*live) == ((1, "keep me"), (2, "me too"))


def test_a_command_hidden_after_an_insert_is_refused_by_the_load_before_the_client_reads_it(
        mariadb_server, mariadb_database, tmp_path, capsys, run_tokens):  # noqa: F811
    settings, target = mariadb_database
    pwned = tmp_path / "pwned"
    archive = write_archive(tmp_path / "hostile.tar.gz", itop_tar(dump=tiny_dump(
        f"INSERT INTO `t` VALUES (3,'c');\\! touch {pwned}\n")))

    restored = cli("restore", archive, *server_options(settings), "--db-name", target)
    restore_err = capsys.readouterr().err
    tested = cli("verify", archive, "--level", "restore", *server_options(settings))
    test_err = capsys.readouterr().err

    assert (restored, tested) == (1, 1)
    assert "itop-dump.sql holds what a restore must not run, line 6: '\\!' is a command of the mysql client" \
        in restore_err
    assert "the client never received it" in restore_err
    assert "does not restore: itop-dump.sql holds what a restore must not run, line 6" in test_err
    assert not pwned.exists()
    assert tables(settings, target) == []
    assert run_tokens and not accounts_left(settings, run_tokens)


def mysqldump_databases(settings, database) -> bytes:
    """What ``mysqldump --databases`` writes: CREATE DATABASE and USE of the named database."""
    program = next(name for name in ("mariadb-dump", "mysqldump")
                   if subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True).returncode == 0)
    return subprocess.run([program, f"--host={settings['host']}", f"--port={settings['port']}",
                           f"--user={settings['user']}", "--databases", database],
                          capture_output=True, check=True).stdout


def test_a_dump_of_another_database_never_writes_into_it(mariadb_server, live, tmp_path, capsys):
    settings, live_name = live
    dump = mysqldump_databases(settings, live_name)
    assert b"USE `" + live_name.encode() in dump and b"CREATE DATABASE" in dump
    archive = write_archive(tmp_path / "other.tar.gz", itop_tar(dump=dump))
    execute(settings, live_name, "INSERT INTO ticket VALUES (3, 'written after the dump')")
    target = f"cib_test_h_{uuid.uuid4().hex[:8]}"

    verified = cli("verify", archive, "--level", "dump")
    verify_err = capsys.readouterr().err
    restored = cli("restore", archive, *server_options(settings), "--db-name", target)
    restore_err = capsys.readouterr().err
    tested = cli("verify", archive, "--level", "restore", *server_options(settings))
    test_err = capsys.readouterr().err

    assert (verified, restored, tested) == (1, 1, 1)
    for err in (verify_err, restore_err, test_err):
        assert re.search(r"holds what a restore must not run, line \d+: a statement on a database or account",
                         err), err
    assert rows(settings, live_name) == ((1, "keep me"), (2, "me too"), (3, "written after the dump"))
    assert target not in databases(settings, "cib_test_h_")


def test_a_qualified_table_is_refused_and_a_trigger_reaching_out_is_stopped_by_the_load_account(
        mariadb_server, live, new_database, tmp_path, capsys, run_tokens):  # noqa: F811
    settings, live_name = live
    target = new_database
    qualified = write_archive(tmp_path / "qualified.tar.gz", itop_tar(dump=tiny_dump(
        f"INSERT INTO `{live_name}`.`ticket` VALUES (7,'planted');\n")))
    # What no scanner of statement heads can see: a trigger body naming the live database.
    trigger = write_archive(tmp_path / "trigger.tar.gz", itop_tar(dump=tiny_dump(
        "DELIMITER ;;\n"
        "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `reach` "
        f"AFTER INSERT ON `t` FOR EACH ROW INSERT INTO `{live_name}`.`ticket` "
        "VALUES (NEW.id + 100, 'planted') */;;\n"
        "DELIMITER ;\n"
        "INSERT INTO `t` VALUES (5,'e');\n")))

    refused = cli("restore", qualified, *server_options(settings), "--db-name", target)
    refused_err = capsys.readouterr().err
    stopped = cli("restore", trigger, *server_options(settings), "--db-name", target)
    stopped_err = capsys.readouterr().err

    assert refused == 1
    assert f"line 6: names an object of another database (`{live_name}`.…)" in refused_err
    assert stopped == 1
    assert re.search(r"statement at line 9 of itop-dump.sql failed with error 1142 \(INSERT command denied "
                     r"to user 'cib_load_\w+'", stopped_err), stopped_err
    assert rows(settings, live_name) == ((1, "keep me"), (2, "me too"))
    assert target not in databases(settings, "cib_test_")
    assert run_tokens and not accounts_left(settings, run_tokens)


def test_the_client_runs_in_binary_mode_without_local_files(runner_archive_for_argv, tmp_path, capsys):
    settings, archive, bindir, argv_log = runner_archive_for_argv

    status = cli("verify", archive, "--level", "restore", *server_options(settings), "--mysql-bindir", bindir)

    assert status == 0, capsys.readouterr().err
    argv = argv_log.read_text().split("\n")
    assert "--binary-mode" in argv and "--local-infile=0" in argv
    assert any(arg.startswith("--user=cib_load_") for arg in argv)


@pytest.fixture
def runner_archive_for_argv(mariadb_server, tmp_path):
    """The tiny dump's archive and a client wrapper that records the arguments of the load."""
    client = subprocess.run(["sh", "-c", "command -v mariadb || command -v mysql"], capture_output=True,
                            text=True, check=True).stdout.strip()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    argv_log = tmp_path / "argv"
    (bindir / "mysql").write_text(f'#!/bin/sh\n[ "$2" = --help ] || printf "%s\\n" "$@" > {argv_log}\n'
                                  f'exec "{client}" "$@"\n')
    (bindir / "mysql").chmod(0o755)
    archive = write_archive(tmp_path / "tiny.tar.gz", itop_tar(dump=tiny_dump()))
    return mariadb_server, archive, bindir, argv_log


def test_the_probe_with_verify_restore_is_critical_for_a_hostile_dump(mariadb_server, tmp_path):
    pwned = tmp_path / "pwned"
    archive = write_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz",
                            itop_tar(dump=tiny_dump(f"\\! touch {pwned}\n")))
    written = 1795732440  # 2026-11-26 23:34 Europe/Paris
    os.utime(archive, (written, written))
    config = probe_config(tmp_path, mariadb_server)

    run = run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                    "--timezone", "Europe/Paris", "--now", "2026-11-27T10:00:00+01:00",
                    "--itop-config", config, "--verify", "restore")

    assert run.exit_code == 2, run.stdout
    assert "itop-dump.sql holds what a restore must not run, line 6: '\\!' is a command of the mysql client" \
        in run.status_line
    assert not pwned.exists()
