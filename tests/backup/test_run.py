"""``itop-backup run`` against the real MariaDB: archives, restores, failures, locks, retention."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid

import pymysql
import pytest

from check_itop_backup.cli.backup import backup_main
from tests.proc import processes

RUN = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()", "run"]
PASSWORD = "pa'ss\"w#rd\\ x"  # quotes, hash, backslash, space: what breaks naive option files


def execute(settings, database, *statements):
    with pymysql.connect(**settings, database=database, charset="utf8mb4") as connection:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        connection.commit()


def populate(settings, database, prefix=""):
    """Tables with utf8mb4 text, emoji and BLOBs, a view and a trigger."""
    execute(settings, database,
            f"CREATE TABLE {prefix}ticket (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(255),"
            " body MEDIUMTEXT, attachment LONGBLOB) CHARSET utf8mb4",
            f"CREATE TABLE {prefix}audit (id INT PRIMARY KEY AUTO_INCREMENT, ticket_id INT, note TEXT)",
            f"CREATE VIEW {prefix}titles AS SELECT id, title FROM {prefix}ticket",
            f"CREATE TRIGGER {prefix}ticket_audit AFTER INSERT ON {prefix}ticket FOR EACH ROW"
            f" INSERT INTO {prefix}audit (ticket_id, note) VALUES (NEW.id, CONCAT('created ', NEW.title))")
    rows = [(f"Incident n°{i} ✓ 😀", "Ünïcödé — 日本語 " * 40, os.urandom(3000 + i)) for i in range(300)]
    with pymysql.connect(**settings, database=database, charset="utf8mb4") as connection:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {prefix}ticket (title, body, attachment) VALUES (%s, %s, %s)", rows)
        connection.commit()


def checksums(settings, database):
    with pymysql.connect(**settings, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = sorted(row[0] for row in cursor.fetchall())
        cursor.execute("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
        return {row[0].split(".", 1)[1]: row[1] for row in cursor.fetchall()}


def write_itop(root, settings, database, subname="", module_extra=""):
    """A minimal installed iTop: conf/production/config-itop.php plus data/ files."""
    (root / "conf" / "production").mkdir(parents=True)
    (root / "data" / "production-modules" / "mymod").mkdir(parents=True)
    (root / "data" / "production-modules" / "mymod" / "module.mymod.php").write_text("<?php // mine\n")
    (root / "data" / "production.delta.xml").write_text("<itop_design/>\n")
    (root / "collectors" / "ldap" / "conf").mkdir(parents=True)
    (root / "collectors" / "ldap" / "conf" / "params.local.xml").write_text("<parameters/>\n")
    config = root / "conf" / "production" / "config-itop.php"
    config.write_text(textwrap.dedent(f"""\
        <?php
        $MySettings = array(
            'db_host' => '{settings['host']}:{settings['port']}',
            'db_name' => '{database}',
            'db_pwd' => '{settings['password']}',
            'db_subname' => '{subname}',
            'db_user' => '{settings['user']}',
            'timezone' => 'Europe/Paris',
        );
        $MyModuleSettings = array(
            'itop-backup' => array(
                'mysql_bindir' => '',
                'retention_count' => 5,
                'extra_files' => array('collectors/ldap/conf/params.local.xml'),
                {module_extra}
            ),
        );
        """))
    return config


def run_cli(*argv):
    with pytest.raises(SystemExit) as exited:
        backup_main(["run", *argv])
    return exited.value.code


@pytest.fixture
def itop(tmp_path, mariadb_database):
    settings, database = mariadb_database
    populate(settings, database)
    config = write_itop(tmp_path / "itop", settings, database)
    return settings, database, config, tmp_path


def archives(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tar.gz"))


def test_the_archive_holds_itop_members_in_order_and_restores_identical_tables(itop, capsys):
    settings, database, config, tmp_path = itop
    target = tmp_path / "backups"
    status = run_cli("--itop-config", str(config), "-f", f"{target}/__DB__-%Y-%m-%d_%H_%M",
                     "--history", str(tmp_path / "h.sqlite"))
    assert status == 0
    assert capsys.readouterr().err == ""
    [name] = archives(target)
    with tarfile.open(target / name) as archive:
        assert archive.getnames() == [
            "config-itop.php", "delta.xml", "production-modules", "production-modules/mymod",
            "production-modules/mymod/module.mymod.php", "collectors/ldap/conf/params.local.xml",
            "itop-dump.sql"]
        assert archive.extractfile("config-itop.php").read() == config.read_bytes()
        manifest = json.loads(archive.pax_headers["comment"])  # tests/archive/test_layout.py
        dump = archive.extractfile("itop-dump.sql").read()
    assert dump.rstrip().rsplit(b"\n", 1)[-1].startswith(b"-- Dump completed")
    assert manifest["dump"]["size"] == len(dump)
    import hashlib
    assert manifest["dump"]["sha256"] == hashlib.sha256(dump).hexdigest()
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == {"audit": 300, "ticket": 300, "titles": None}
    assert b"USE `" not in dump and b"CREATE DATABASE" not in dump

    restored = f"cib_restore_{uuid.uuid4().hex[:8]}"
    execute(settings, None, f"CREATE DATABASE `{restored}` CHARACTER SET utf8mb4")
    try:
        subprocess.run(["mariadb", "--default-character-set=utf8mb4", "-h", settings["host"],
                        "-P", str(settings["port"]), "-u", settings["user"], restored],
                       input=dump, check=True, env=dict(os.environ, MYSQL_PWD=settings["password"]))
        assert checksums(settings, restored) == checksums(settings, database)
        with pymysql.connect(**settings, database=restored) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM titles")
            assert cursor.fetchone()[0] == 300
            cursor.execute("SHOW TRIGGERS")
            assert [row[0] for row in cursor.fetchall()] == ["ticket_audit"]
    finally:
        execute(settings, None, f"DROP DATABASE `{restored}`")
    with sqlite3.connect(tmp_path / "h.sqlite") as history:
        rows = history.execute("SELECT series, archive_path, size, status FROM runs").fetchall()
    assert rows == [(f"{target}/{database}-%Y-%m-%d_%H_%M.tar.gz", str(target / name),
                     (target / name).stat().st_size, "ok")]


def test_db_subname_dumps_only_the_prefixed_tables(tmp_path, mariadb_database):
    settings, database = mariadb_database
    populate(settings, database, prefix="it_")
    execute(settings, database, "CREATE TABLE itxother (id INT)", "CREATE TABLE other (id INT)")
    status = run_cli("--db-host", f"{settings['host']}:{settings['port']}", "--db-user", settings["user"],
                     "--db-name", database, "--db-subname", "it_", "-f", str(tmp_path / "b"),
                     "--history", str(tmp_path / "h.sqlite"))
    assert status == 0
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        dump = archive.extractfile("itop-dump.sql").read().decode("utf-8", "replace")
    created = sorted(line.split("`")[1] for line in dump.splitlines() if line.startswith("CREATE TABLE"))
    assert created == ["it_audit", "it_ticket"]
    assert re.search(r"VIEW `it_titles` AS", dump) and re.search(r"TRIGGER `?it_ticket_audit`?", dump)
    assert "`itxother`" not in dump and "`other`" not in dump  # '_' is not a LIKE wildcard here


def slow_bindir(tmp_path, pause):
    """A mysql_bindir whose mysqldump runs the real one, stalling its output for *pause* seconds."""
    real = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "mysqldump"
    script.write_text(f'#!/bin/bash\nset -o pipefail\n"{real}" "$@" | (sleep {pause}; cat)\n')
    script.chmod(0o755)
    return bindir


def dump_processes(marker):
    """The running processes whose argv holds *marker* and a --defaults-extra-file, as read once."""
    return {pid: seen for pid, seen in processes(marker).items()
            if b"--defaults-extra-file" in b" ".join(seen.argv)}


def blocked_on_a_lock(pid: int) -> bool:
    """Whether process *pid* waits for a lock (a ``->`` line of /proc/locks)."""
    with open("/proc/locks") as locks:
        return any(fields[1] == "->" and fields[5] == str(pid) for fields in map(str.split, locks))


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_password_is_on_no_command_line_or_environment_of_the_running_mysqldump(itop):
    settings, database, config, tmp_path = itop
    user = f"cib_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        cursor.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
    try:
        (tmp_path / "pw").write_text(PASSWORD + "\n")
        process = subprocess.Popen(
            [*RUN, "--itop-config", str(config), "--db-user", user,
             "--db-password-file", str(tmp_path / "pw"), "--mysql-bindir", str(slow_bindir(tmp_path, 2)),
             "-f", str(tmp_path / "out" / "a"),
             "--history", str(tmp_path / "h.sqlite")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        running = wait_for(lambda: dump_processes(f"--user={user}"))
        for seen in running.values():
            assert not any(PASSWORD.encode() in arg for arg in seen.argv)
            assert any(arg.startswith(b"--defaults-extra-file=/dev/fd/") for arg in seen.argv)
            assert PASSWORD.encode() not in seen.environ
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert PASSWORD.encode() not in out + err
        with tarfile.open(tmp_path / "out" / "a.tar.gz") as archive:
            assert archive.getnames()[-1] == "itop-dump.sql"
    finally:
        execute(settings, None, f"DROP USER '{user}'@'%'")


def test_a_wrong_password_exits_1_with_one_line_and_leaves_earlier_archives_alone(itop, capsys):
    settings, database, config, tmp_path = itop
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.tar.gz").write_bytes(b"previous good archive")
    (tmp_path / "pw").write_text("not-the-password-42\n")
    status = run_cli("--itop-config", str(config), "--db-password-file", str(tmp_path / "pw"),
                     "-f", str(target / "old"), "--history", str(tmp_path / "h.sqlite"))
    out, err = capsys.readouterr()
    assert status == 1
    assert err.count("\n") == 1 and "Access denied" in err
    assert "not-the-password-42" not in out + err
    assert (target / "old.tar.gz").read_bytes() == b"previous good archive"
    assert sorted(p.name for p in target.iterdir()) == [".itop-backup.lock", "old.tar.gz"]
    with sqlite3.connect(tmp_path / "h.sqlite") as history:
        assert history.execute("SELECT status, archive_path FROM runs").fetchall() == [("failed", None)]


def test_an_unknown_database_exits_1_naming_it(tmp_path, mariadb_server, capsys):
    status = run_cli("--db-host", f"{mariadb_server['host']}:{mariadb_server['port']}",
                     "--db-user", mariadb_server["user"], "--db-name", "cib_no_such_db",
                     "-f", str(tmp_path / "a"), "--history", str(tmp_path / "h.sqlite"))
    assert status == 1
    assert capsys.readouterr().err == (
        "itop-backup run: the database 'cib_no_such_db' does not seem to exist\n")


def test_a_mysqldump_failure_reports_its_line_and_leaves_no_file(itop, capsys):
    settings, database, config, tmp_path = itop
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mysqldump").write_text(
        "#!/bin/sh\necho '-- partial'\necho 'mysqldump: Error 2020: Got packet bigger than "
        "'\"'\"'max_allowed_packet'\"'\"' bytes when dumping table `ticket` at row: 7' >&2\nexit 2\n")
    (bindir / "mysqldump").chmod(0o755)
    status = run_cli("--itop-config", str(config), "--mysql-bindir", str(bindir),
                     "-f", str(tmp_path / "out" / "a"), "--history", str(tmp_path / "h.sqlite"))
    assert status == 1
    assert capsys.readouterr().err == (
        "itop-backup run: mysqldump failed (exit 2): mysqldump: Error 2020: Got packet bigger than "
        "'max_allowed_packet' bytes when dumping table `ticket` at row: 7\n")
    assert os.listdir(tmp_path / "out") == [".itop-backup.lock"]


def test_a_killed_run_leaves_no_final_file_and_the_next_run_cleans_up_and_succeeds(itop):
    settings, database, config, tmp_path = itop
    target = tmp_path / "out"
    argv = ["--itop-config", str(config), "-f", str(target / "a"), "--history", str(tmp_path / "h.sqlite")]
    process = subprocess.Popen([*RUN, *argv, "--mysql-bindir", str(slow_bindir(tmp_path, 30))],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: dump_processes(database))
    assert len([p for p in target.iterdir() if p.name.startswith(".itop-backup-")]) == 1
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (target / "a.tar.gz").exists()
    assert run_cli(*argv) == 0
    assert sorted(p.name for p in target.iterdir()) == [".itop-backup.lock", "a.tar.gz"]


def test_two_runs_never_overlap_and_wait_queues_the_second(itop, capsys):
    settings, database, config, tmp_path = itop
    target = tmp_path / "out"
    target.mkdir()
    argv = ["--itop-config", str(config), "-f", str(target / "a"), "--history", str(tmp_path / "h.sqlite")]
    with open(target / ".itop-backup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a run in progress
        assert run_cli(*argv) == 1
        assert "another itop-backup run holds" in capsys.readouterr().err
        waiting = subprocess.Popen([*RUN, *argv, "--wait"], stderr=subprocess.PIPE)
        wait_for(lambda: blocked_on_a_lock(waiting.pid))
        assert waiting.poll() is None and not (target / "a.tar.gz").exists()
    assert waiting.wait(timeout=60) == 0
    assert (target / "a.tar.gz").exists()


def test_retention_keeps_the_newest_n_archives_of_the_pattern_and_nothing_else(itop):
    settings, database, config, tmp_path = itop
    target = tmp_path / "out"
    target.mkdir()
    old = [f"{database}-2020-01-0{day}_23_30.tar.gz" for day in range(1, 6)]
    others = ["other-2020-01-01_23_30.tar.gz", "notes.txt", f"{database}-manual.tar.gz"]
    for name in old + others:
        (target / name).write_bytes(b"x")
    status = run_cli("--itop-config", str(config), "-f", f"{target}/__DB__-%Y-%m-%d_%H_%M",
                     "--retention-count", "3", "--history", str(tmp_path / "h.sqlite"))
    assert status == 0
    remaining = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
    new = [name for name in remaining if name not in old + others]
    assert len(new) == 1
    assert remaining == sorted(old[-2:] + others + new)


def test_an_extra_file_outside_the_itop_root_aborts_before_anything_is_written(tmp_path, mariadb_database,
                                                                                capsys):
    settings, database = mariadb_database
    config = write_itop(tmp_path / "itop", settings, database,
                        module_extra="'file_name_format' => 'x', 'extra_files' => array('../secret.txt'),")
    (tmp_path / "secret.txt").write_text("s")
    status = run_cli("--itop-config", str(config), "--history", str(tmp_path / "h.sqlite"))
    assert status == 1
    assert "Considered as UNSAFE because not inside the iTop directory" in capsys.readouterr().err
    assert archives(tmp_path / "itop" / "data" / "backups" / "auto") == []


def test_dry_run_prints_name_command_and_members_and_writes_nothing(itop, capsys):
    settings, database, config, tmp_path = itop
    status = run_cli("--itop-config", str(config), "--dry-run", "--history", str(tmp_path / "h.sqlite"))
    out = capsys.readouterr().out
    assert status == 0
    assert f"archive: {tmp_path}/itop/data/backups/auto/{database}-" in out
    assert "--defaults-extra-file=<pipe> --opt --skip-lock-tables --default-character-set=utf8mb4" in out
    assert settings["password"] == "" or settings["password"] not in out
    assert (out.index("  config-itop.php") < out.index("  pax_global_header (the manifest")
            < out.index("  itop-dump.sql"))
    assert not (tmp_path / "itop" / "data" / "backups").exists()
    assert not (tmp_path / "h.sqlite").exists()


@pytest.mark.parametrize("enabled", ["'0'", "''", "false", "0"])
def test_tls_turned_off_as_php_reads_it_is_off_for_the_runner_and_the_live_comparison(
        tmp_path, mariadb_database, enabled):
    """``'db_tls.enabled' => '0'`` is false in PHP: the local server (no TLS) is reached."""
    settings, database = mariadb_database
    execute(settings, database, "CREATE TABLE ticket (id INT PRIMARY KEY)")
    config = write_itop(tmp_path / "itop", settings, database)
    config.write_text(config.read_text().replace("$MySettings = array(",
                                                 f"$MySettings = array(\n    'db_tls.enabled' => {enabled},"))

    status = run_cli("--itop-config", str(config), "-f", str(tmp_path / "b"),
                     "--history", str(tmp_path / "h"))

    assert status == 0
    from check_itop_backup.itop.instance import InstanceRequest, resolve_instance

    request = InstanceRequest(itop_config=str(config), need_pattern=False)  # what the live comparison uses
    assert resolve_instance(request).database.tls is False


def test_a_tls_ca_file_that_is_not_there_is_one_line(tmp_path, mariadb_database, capsys):
    settings, database = mariadb_database
    config = write_itop(tmp_path / "itop", settings, database)
    config.write_text(config.read_text().replace(
        "$MySettings = array(",
        "$MySettings = array(\n    'db_tls.enabled' => true, 'db_tls.ca' => '/nowhere/ca.pem',"))

    status = run_cli("--itop-config", str(config), "-f", str(tmp_path / "b"),
                     "--history", str(tmp_path / "h"))

    assert status == 1
    assert capsys.readouterr().err == (
        f"itop-backup run: cannot use the TLS CA file '/nowhere/ca.pem' with the database server "
        f"{settings['host']}:{settings['port']}: No such file or directory\n")


@pytest.mark.parametrize("level", ["2", "6"])
def test_without_isal_and_zlib_ng_the_run_deflates_with_zlib_and_says_so_once_at_v(itop, level):
    from tests.archive.test_codec import WITHOUT_WHEELS

    settings, database, config, tmp_path = itop
    argv = ["--itop-config", str(config), "--history", str(tmp_path / "h.sqlite"), "--compress-level", level,
            "-v"]
    runs = {}
    for name, prefix in (("wheels", ""), ("zlib", WITHOUT_WHEELS)):
        runs[name] = subprocess.run([sys.executable, "-c", prefix + RUN[2], "run", *argv,
                                     "-f", str(tmp_path / name / "a")], capture_output=True, text=True)
        assert runs[name].returncode == 0, runs[name].stderr
    fallback = [line for line in runs["zlib"].stderr.splitlines() if "cannot be imported" in line]
    missing = (("isal", "isal"), ("zlib-ng", "zlib_ng"))[:2 if level == "6" else 1]  # level 2 is ISA-L's
    assert fallback == [f"itop-backup run: INFO: {package} cannot be imported (No module named {module!r}): "
                        "zlib is used instead, slower" for package, module in missing]
    assert "cannot be imported" not in runs["wheels"].stderr
    dumps = []
    for name in runs:
        with tarfile.open(tmp_path / name / "a.tar.gz") as archive:
            dumps.append(archive.extractfile("itop-dump.sql").read().rsplit(b"\n-- Dump completed", 1)[0])
    assert dumps[0] == dumps[1]
    verified = subprocess.run([*RUN[:3], "verify", str(tmp_path / "zlib" / "a.tar.gz")],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert "OK at dump level" in verified.stdout
