"""Restore with the rights iTop's own restore needs: an account with ALL on the iTop database only.

Such an account may not create the scratch database, so ``itop-backup restore`` loads into
the target itself, after saving its previous content with the runner, and puts that back
when the load fails; the test restore says which GRANT it needs.
"""

from __future__ import annotations

import os
import secrets
import tarfile
import textwrap
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pymysql
import pytest

from check_itop_backup.itop.instance import PASSWORD_ENV
from tests.backup.test_restore import cli, itop_tar, tiny_dump, write_archive
from tests.backup.test_run import checksums, execute, populate, run_cli, write_itop
from tests.checkrun import run_check

PREVIOUS_ROWS = [(1, "kept row one"), (2, "kept row two"), (3, "kept row three")]


@pytest.fixture
def limited_account(mariadb_server, monkeypatch):
    """A database, and an account with ALL on it only (as iTop's setup creates it); its password
    in $ITOP_BACKUP_DB_PASSWORD once ``use_account`` is called. Yields (root settings, account
    settings, database, use_account)."""
    token = uuid.uuid4().hex[:12]
    # A name without "_", as iTop's usual "itop": no part of it may be taken for a run token.
    database, user, password = f"itop{token}", f"cib_rights_{token}", secrets.token_urlsafe(12)
    execute(mariadb_server, None, f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4",
            f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
    try:
        yield (mariadb_server, dict(mariadb_server, user=user, password=password), database,
               lambda: monkeypatch.setenv(PASSWORD_ENV, password))
    finally:
        execute(mariadb_server, None, f"DROP USER IF EXISTS '{user}'@'%'",
                f"DROP DATABASE IF EXISTS `{database}`")


def previous_content(settings, database, replaced="t"):
    """The target's content before the restore: a table the dump does not hold, and one it replaces."""
    execute(settings, database, "CREATE TABLE previous (id INT PRIMARY KEY, note VARCHAR(40))",
            "INSERT INTO previous VALUES " + ", ".join(f"({i}, '{note}')" for i, note in PREVIOUS_ROWS),
            f"CREATE TABLE {replaced} (id INT PRIMARY KEY, name VARCHAR(20))",
            f"INSERT INTO {replaced} VALUES (7, 'old row')")


def rows(settings, database, table):
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM `{table}` ORDER BY 1")
        return [tuple(row) for row in cursor.fetchall()]


def tables(settings, database):
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        return sorted(row[0] for row in cursor.fetchall())


def account_options(account, database):
    return ("--db-host", f"{account['host']}:{account['port']}", "--db-user", account["user"],
            "--db-name", database)


def test_an_account_with_all_on_the_itop_database_only_restores_into_it(limited_account, mariadb_database,
                                                                         tmp_path, capsys):
    root, account, target, use_account = limited_account
    _, source = mariadb_database
    populate(root, source)
    config = write_itop(tmp_path / "itop", root, source)
    assert run_cli("--itop-config", str(config), "-f", str(tmp_path / "backups" / "b"),
                   "--history", str(tmp_path / "h.sqlite")) == 0
    capsys.readouterr()
    previous_content(root, target, replaced="ticket")
    live_config = write_itop(tmp_path / "live", account, target)
    before = live_config.read_bytes()
    use_account()

    status = cli("restore", tmp_path / "backups" / "b.tar.gz", *account_options(account, target), "--force",
                 "--itop-root", tmp_path / "live")

    out, err = capsys.readouterr()
    assert status == 0, err
    [path] = [line for line in out.splitlines() if line.startswith("path: ")]
    [saved] = sorted((tmp_path / "backups").glob(f"{target}-before-restore-*.tar.gz"))
    assert path == (f"path: loaded into {target} itself, as iTop's restore does (this account may not "
                    f"create a scratch database); its previous content is in {saved}")
    assert {k: v for k, v in checksums(root, target).items() if k != "previous"} == checksums(root, source)
    assert rows(root, target, "previous") == PREVIOUS_ROWS  # not in the dump: left as it was
    assert err.splitlines() == [
        f"itop-backup restore: warning: the dump was loaded as {account['user']}: a temporary account "
        f"restricted to {target} could not be created (Access denied; you need (at least one of) the "
        "CREATE USER privilege(s) for this operation)",
        f"itop-backup restore: warning: 1 table(s) of {target} not in the dump were left as they are: "
        "previous"]
    assert f"'db_name' => '{source}'" in live_config.read_text()  # the archive's config is in place
    assert not (tmp_path / "live" / "data" / ".maintenance").exists()
    assert cli("verify", saved, "--level", "dump") == 0  # the previous content, restorable
    with tarfile.open(saved) as previous:
        assert previous.extractfile("config-itop.php").read() == before


def test_a_failing_load_puts_the_previous_content_back(limited_account, tmp_path, capsys):
    root, account, target, use_account = limited_account
    previous_content(root, target)
    bad = tiny_dump("DROP TABLE IF EXISTS `previous`;\nCREATE TABLE `fresh` (id INT);\n"
                    "INSERT INTO `no_such_table` VALUES (1);\n")
    archive = write_archive(tmp_path / "bad.tar.gz", itop_tar(dump=bad))
    use_account()

    status = cli("restore", archive, *account_options(account, target), "--force")

    out, err = capsys.readouterr()
    [saved] = sorted(tmp_path.glob(f"{target}-before-restore-*.tar.gz"))
    assert (status, out) == (1, "")
    assert err.startswith("itop-backup restore: statement at line ") and err.count("\n") == 1
    assert f"was put back as it was from {saved}" in err
    assert tables(root, target) == ["previous", "t"]
    assert rows(root, target, "previous") == PREVIOUS_ROWS
    assert rows(root, target, "t") == [(7, "old row")]


def test_the_saved_content_goes_where_keep_previous_in_says(limited_account, tmp_path, capsys):
    root, account, target, use_account = limited_account
    previous_content(root, target)
    archive = write_archive(tmp_path / "good.tar.gz", itop_tar(dump=tiny_dump()))
    keep = tmp_path / "kept"
    use_account()

    status = cli("restore", archive, *account_options(account, target), "--force", "--keep-previous-in", keep)

    out, err = capsys.readouterr()
    assert status == 0, err
    [saved] = list(keep.glob(f"{target}-before-restore-*.tar.gz"))
    assert f"its previous content is in {saved}" in out
    assert rows(root, target, "t") == [(1, "a(b"), (2, "it's")]


def test_the_test_restore_without_create_database_names_the_grant_it_needs(limited_account, tmp_path, capsys):
    root, account, target, use_account = limited_account
    archive = write_archive(tmp_path / "good.tar.gz", itop_tar(dump=tiny_dump()))
    use_account()

    status = cli("verify", archive, "--level", "restore", "--db-host", f"{account['host']}:{account['port']}",
                 "--db-user", account["user"])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert err.rstrip().endswith(f"GRANT ALL ON `cib\\_scratch\\_%`.* TO '{account['user']}'@'%'")
    assert tables(root, target) == []  # never loaded into the live database


def test_the_probes_test_restore_without_the_grant_is_unknown(limited_account, tmp_path):
    root, account, target, _ = limited_account
    written = datetime(2026, 11, 26, 23, 34, tzinfo=ZoneInfo("Europe/Paris"))
    archive = write_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", itop_tar(dump=tiny_dump()))
    os.utime(archive, (written.timestamp(), written.timestamp()))
    config = tmp_path / "config-itop.php"
    config.write_text(textwrap.dedent(f"""\
        <?php
        $MySettings = array('db_host' => '{account['host']}:{account['port']}',
            'db_user' => '{account['user']}', 'db_pwd' => '{account['password']}', 'db_name' => '{target}');
        """))

    run = run_check("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
                    "--timezone", "Europe/Paris", "--now", "2026-11-27T10:00:00+01:00",
                    "--itop-config", config, "--verify", "restore")

    assert run.exit_code == 3, run.stdout
    assert "GRANT ALL ON `cib\\_scratch\\_%`.*" in run.status_line
    assert tables(root, target) == []
