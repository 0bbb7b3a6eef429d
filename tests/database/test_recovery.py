"""Restores that fail late or are killed: nothing replaced before
the files can be placed, and whatever kill -9 leaves is finished or undone by the next run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid

import pymysql
import pytest

from check_itop_backup.archive.extract import StagedFiles
from check_itop_backup.backup.restore import RestoreError, SwapResult, _place
from tests.archive_corpus import itop_tar
from tests.backup.test_restore import (
    BACKUP,
    PASSWORD,
    checksums,
    cli,
    databases,
    execute,
    loading_clients,
    runner_archive,  # noqa: F401 - fixture
    server_options,
    stalling_client,
    tiny_dump,
    write_archive,
)
from tests.checkrun import ITOP_ARCHIVE, run_check
from tests.database.test_load import load_accounts, tables


def test_a_symlinked_conf_is_refused_before_the_database_is_replaced(runner_archive, new_database,  # noqa: F811
                                                                     tmp_path, capsys):
    settings, source, archive = runner_archive
    target = new_database
    execute(settings, None, f"CREATE DATABASE {target}")
    execute(settings, target, "CREATE TABLE ticket (id INT PRIMARY KEY)", "INSERT INTO ticket VALUES (1)")
    before = checksums(settings, target)
    root, elsewhere = tmp_path / "itop", tmp_path / "elsewhere"
    (root / "data").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "conf").symlink_to(elsewhere)

    status = cli("restore", archive, *server_options(settings), "--db-name", target, "--force",
                 "--itop-root", root)

    err = capsys.readouterr().err
    assert status == 1
    assert err.strip() == (f"itop-backup restore: {root}/conf is a symbolic link: not followed, nothing "
                           f"written through it: nothing was written, {target} and {root} are unchanged")
    assert checksums(settings, target) == before
    assert list(elsewhere.iterdir()) == []
    assert list((root / "data").iterdir()) == []  # no maintenance file, staging or journal left


def test_a_failure_to_place_files_after_the_swap_says_what_was_replaced_and_keeps_the_rest_staged(tmp_path):
    from check_itop_backup.archive.extract import FilesJournal, recover_files

    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)
    (root / "extensions").write_text("a file where a directory goes")
    with FilesJournal(str(root), "0123456789abcdef", "production") as journal, \
            StagedFiles(str(root), staging=journal.staging) as files:
        files.open_member("delta.xml", b"0").write(b"<delta/>", 0, 8)
        files.open_member("extensions/readme.txt", b"0").write(b"hello", 0, 5)
        journal.note(swapped=True)
        swapped = SwapResult(("ticket", "priv_user"), (), (), ("ticket",), ())

        with pytest.raises(RestoreError) as raised:
            _place(files, journal, "itop", swapped)

    assert str(raised.value).startswith(
        "itop was replaced (2 tables) but placing the files failed (")
    assert f"placed: {root}/data/production.delta.xml; the rest is still staged" in str(raised.value)
    (root / "extensions").unlink()  # the operator removes what was in the way

    done = recover_files(str(root))

    assert done[0].endswith("placed the 1 file(s) it had staged")
    assert (root / "extensions" / "readme.txt").read_text() == "hello"
    assert (root / "data" / "production.delta.xml").read_text() == "<delta/>"  # placed before, kept
    assert sorted(path.name for path in (root / "data").iterdir()) == ["production.delta.xml"]


def killed_mid_load(archive, settings, tmp_path, *extra):
    """Start ``itop-backup restore`` (or the restore level) with a client that stalls, kill -9
    it mid-load with its client, as a power loss would; return the scratch database's name."""
    process = subprocess.Popen([*BACKUP, *extra, str(archive), *server_options(settings),
                                "--mysql-bindir", str(stalling_client(tmp_path))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    clients, scratch = loading_clients(process)
    while time.monotonic() < deadline and not tables(settings, scratch):
        time.sleep(0.1)
    process.kill()
    process.wait()
    for pid in clients:
        with contextlib.suppress(ProcessLookupError):  # the wrapper's own children end with it
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    return scratch


def test_kill_9_during_a_restore_is_undone_by_the_next_restore(runner_archive, new_database,  # noqa: F811
                                                               tmp_path, capsys):
    settings, source, archive = runner_archive
    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)
    scratch = killed_mid_load(archive, settings, tmp_path, "restore", "--db-name", new_database,
                              "--itop-root", str(root))
    token = scratch.rsplit("_", 1)[1]
    left = sorted(path.name for path in (root / "data").iterdir())
    assert left == [".itop-restore-" + token, ".itop-restore-" + token + ".json", ".maintenance"]
    assert oct((root / "data" / f".itop-restore-{token}.json").stat().st_mode & 0o777) == "0o600"
    assert scratch in databases(settings, "cib_restore_")
    assert f"cib_load_{token}" in load_accounts(settings)

    status = cli("restore", archive, *server_options(settings), "--db-name", new_database,
                 "--itop-root", root)

    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"a killed restore had left work behind: dropped the scratch database {scratch}" in out + err
    assert f"left the maintenance mode it had entered ({root}/data/.maintenance)" in out + err
    assert sorted(path.name for path in (root / "data").iterdir()) == ["production-modules",
                                                                       "production.delta.xml"]
    assert scratch not in databases(settings, "cib_restore_")
    assert not any(token in account for account in load_accounts(settings))
    assert checksums(settings, new_database) == checksums(settings, source)


def test_kill_9_during_a_test_restore_is_undone_by_the_next_one_and_a_live_run_is_left_alone(
        mariadb_server, tmp_path, capsys):
    archive = write_archive(tmp_path / "tiny.tar.gz", itop_tar(dump=tiny_dump()))
    scratch = killed_mid_load(archive, mariadb_server, tmp_path, "verify", "--level", "restore")
    live_token = uuid.uuid4().hex[:16]
    live_scratch = f"cib_scratch_{live_token}"
    with pymysql.connect(**mariadb_server) as alive, alive.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (f"cib_run_{live_token}",))
        cursor.execute(f"CREATE DATABASE {live_scratch}")
        try:
            status = cli("verify", archive, "--level", "restore", *server_options(mariadb_server))
            out, err = capsys.readouterr()
            assert live_scratch in databases(mariadb_server, "cib_scratch_")
        finally:
            cursor.execute(f"DROP DATABASE {live_scratch}")

    assert status == 0, err
    assert f"dropped the scratch database {scratch}" in out + err
    assert scratch not in databases(mariadb_server, "cib_scratch_")


def test_a_restore_killed_after_its_rename_is_finished_by_the_next_test_restore(
        mariadb_server, mariadb_database, tmp_path, capsys):
    """The state kill -9 leaves between the RENAME and the re-creation of views and triggers."""
    settings, target = mariadb_database
    token = uuid.uuid4().hex[:16]
    scratch = f"cib_restore_{token}"
    execute(settings, target, "CREATE TABLE ticket (id INT PRIMARY KEY)",
            "INSERT INTO ticket VALUES (1), (2)", f"CREATE TABLE _cib_old_{token}_0 (id INT PRIMARY KEY)")
    execute(settings, None, f"CREATE DATABASE {scratch}")
    execute(settings, scratch, "CREATE TABLE _cib_journal (target VARCHAR(64) NOT NULL, "
            "kind VARCHAR(8) NOT NULL, name VARCHAR(64) NOT NULL, sql_mode TEXT NOT NULL, "
            "statement LONGTEXT NOT NULL)",
            f"INSERT INTO _cib_journal VALUES ('{target}', 'TARGET', '', '', ''), "
            f"('{target}', 'VIEW', 'ticket_ids', '', 'CREATE VIEW `ticket_ids` AS SELECT id FROM ticket')")
    archive = write_archive(tmp_path / "tiny.tar.gz", itop_tar(dump=tiny_dump()))

    status = cli("verify", archive, "--level", "restore", *server_options(settings))

    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"finished the swap into {target} (re-created ticket_ids)" in out + err
    assert f"dropped {target}._cib_old_{token}_0, replaced by a restore" in out + err
    assert tables(settings, target) == ["ticket", "ticket_ids"]
    assert scratch not in databases(settings, "cib_restore_")


def test_a_killed_swap_whose_target_was_dropped_since_is_cleaned_without_an_error(
        mariadb_server, tmp_path, capsys):
    """The target of a restore killed after its rename may be dropped before the next run
    (an administrator, or a test beside this one): nothing is left to finish, the scratch goes."""
    token = uuid.uuid4().hex[:16]
    scratch, target = f"cib_restore_{token}", f"cib_test_gone_{token[:8]}"
    execute(mariadb_server, None, f"CREATE DATABASE {scratch}")
    execute(mariadb_server, scratch, "CREATE TABLE _cib_journal (target VARCHAR(64) NOT NULL, "
            "kind VARCHAR(8) NOT NULL, name VARCHAR(64) NOT NULL, sql_mode TEXT NOT NULL, "
            "statement LONGTEXT NOT NULL)",
            f"INSERT INTO _cib_journal VALUES ('{target}', 'VIEW', 'v', '', 'CREATE VIEW `v` AS SELECT 1')")
    archive = write_archive(tmp_path / "tiny.tar.gz", itop_tar(dump=tiny_dump()))

    status = cli("verify", archive, "--level", "restore", *server_options(mariadb_server))

    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"nothing to finish in {target}: it was dropped since" in out + err
    assert f"dropped the scratch database {scratch}" in out + err
    assert "cannot be cleaned" not in out + err
    assert scratch not in databases(mariadb_server, "cib_restore_")
    assert target not in databases(mariadb_server, "cib_test_gone_")


def dead_journal(root, maintenance=True):
    """What kill -9 during the load leaves in an iTop root: journal, staging with the config, maintenance."""
    token = uuid.uuid4().hex[:16]
    data = root / "data"
    (data / f".itop-restore-{token}").mkdir(mode=0o700)
    (data / f".itop-restore-{token}" / "config-itop.php").write_text(f"<?php $pw = '{PASSWORD}';")
    (data / f".itop-restore-{token}.json").write_text(
        json.dumps({"environment": "production", "maintenance": maintenance, "swapped": False}))
    if maintenance:
        (data / ".maintenance").touch()
    return token


def test_the_probe_cleans_a_killed_restore_and_warns_about_what_it_cannot(tmp_path):
    root = tmp_path / "itop"
    (root / "conf" / "production").mkdir(parents=True)
    (root / "data" / "backups" / "auto").mkdir(parents=True)
    config = root / "conf" / "production" / "config-itop.php"
    config.write_text("<?php\n$MySettings = array('db_host' => '127.0.0.1', 'db_name' => 'itop');\n")
    archive = root / "data" / "backups" / "auto" / "itop-2026-11-26_23_30.tar.gz"
    archive.write_bytes(ITOP_ARCHIVE.read_bytes())
    os.utime(archive, (1795732440, 1795732440))  # 2026-11-26 23:34 Europe/Paris
    token = dead_journal(root)
    argv = ("--itop-config", config, "--timezone", "Europe/Paris", "--now", "2026-11-27T10:00:00+01:00")

    subprocess.run(["chattr", "+i", root / "data"], check=True)
    try:
        stuck = run_check(*argv)
    finally:
        subprocess.run(["chattr", "-i", root / "data"], check=True)
    cleaned = run_check(*argv, "-vv")

    assert stuck.exit_code == 1, stuck.stdout
    assert f"a killed restore left {root}/data/.itop-restore-{token}.json and what it names (maintenance " \
           "mode, staged files) and they cannot be cleaned: Operation not permitted" in stuck.status_line
    assert cleaned.exit_code == 0, cleaned.stdout
    assert f"left the maintenance mode it had entered ({root}/data/.maintenance)" in cleaned.stdout
    assert sorted(path.name for path in (root / "data").iterdir()) == ["backups"]


def test_a_running_restore_is_never_taken_for_a_killed_one(tmp_path):
    from check_itop_backup.archive.extract import FilesJournal, recover_files

    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)
    with FilesJournal(str(root), uuid.uuid4().hex[:16], "production") as journal:
        journal.note(maintenance=True)
        (root / "data" / ".maintenance").touch()
        os.mkdir(journal.staging)

        assert recover_files(str(root)) == []
        assert os.path.exists(journal.path) and os.path.isdir(journal.staging)
    assert (root / "data" / ".maintenance").exists()  # removed by maintenance_mode, not the journal


def test_kill_9_while_placing_files_is_finished_by_the_next_restore(tmp_path):
    from check_itop_backup.archive.extract import recover_files

    root = tmp_path / "itop"
    (root / "data").mkdir(parents=True)
    token = dead_journal(root)
    journal = root / "data" / f".itop-restore-{token}.json"
    journal.write_text(journal.read_text().replace('"swapped": false', '"swapped": true'))
    assert '"swapped": true' in journal.read_text()
    # What the killed run had placed already: no longer staged, it must stay.
    (root / "data" / "production.delta.xml").write_text("<delta/>")
    (root / "data" / "production-modules" / "mymod").mkdir(parents=True)

    done = recover_files(str(root))

    assert done[0].endswith("placed the 1 file(s) it had staged")
    assert (root / "conf" / "production" / "config-itop.php").read_text() == f"<?php $pw = '{PASSWORD}';"
    assert oct((root / "conf" / "production" / "config-itop.php").stat().st_mode & 0o777) == "0o440"
    assert sorted(path.name for path in (root / "data").iterdir()) == ["production-modules",
                                                                       "production.delta.xml"]
    assert (root / "data" / "production-modules" / "mymod").is_dir()


def test_the_load_account_and_scratch_of_a_sigkilled_runner_side_are_gone_after_recovery(mariadb_server):
    """A dead run's account is dropped even without a scratch database (killed between the two)."""
    from check_itop_backup.database.recovery import recover_server
    from check_itop_backup.itop.instance import DatabaseSettings

    token = uuid.uuid4().hex[:16]
    execute(mariadb_server, None, f"CREATE USER 'cib_load_{token}'@'localhost' IDENTIFIED BY 'x'")
    settings = DatabaseSettings(host=mariadb_server["host"], port=mariadb_server["port"],
                                user=mariadb_server["user"], password=mariadb_server["password"])

    done = recover_server(settings)

    assert f"a killed restore had left work behind: dropped the load account cib_load_{token}@localhost" \
        in done
    assert f"cib_load_{token}" not in load_accounts(mariadb_server)


