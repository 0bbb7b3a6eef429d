"""The probe and ``itop-backup run`` resolve one iTop instance: given the same options, the probe
expects the very archive the runner writes (``--print-expected`` against ``run --dry-run``, then a
real run against MariaDB judged by the probe)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pymysql
import pytest

from check_itop_backup.cli.backup import backup_main
from tests.checkrun import run_check

PLACEHOLDERS = ("__HOST__", "__DB__", "__SUBNAME__")
CONFIG_HOST, OPTION_HOST = "127.0.0.1:3306", "localhost:3306"  # both reach the test server over TCP
SUBNAME = "pfx_"


@pytest.fixture(scope="module")
def database(mariadb_server):
    """A database of our own holding one table with the prefix; dropped afterwards."""
    name = f"cit_same_{uuid.uuid4().hex[:10]}"
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"CREATE TABLE `{name}`.`{SUBNAME}ticket` (id INT PRIMARY KEY)")
    try:
        yield name
    finally:
        with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def write_config(root, database, timezone="Europe/Paris"):
    path = root / "conf" / "production" / "config-itop.php"
    path.parent.mkdir(parents=True)
    path.write_text(f"<?php\n$MySettings = array('db_host' => '{CONFIG_HOST}', 'db_name' => '{database}', "
                    f"'db_user' => 'root', 'db_pwd' => '', 'db_subname' => '{SUBNAME}', "
                    f"'timezone' => '{timezone}');\n")
    return path


def runner(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        backup_main(["run", *map(str, argv)])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def line_after(prefix: str, output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(prefix)]
    return line[len(prefix):].strip()


MATRIX = [(tokens, host, config, params)
          for count in range(len(PLACEHOLDERS) + 1) for tokens in itertools.combinations(PLACEHOLDERS, count)
          for host, config, params in itertools.product((False, True), repeat=3)]


@pytest.mark.parametrize(("tokens", "with_db_host", "with_config", "with_params"), MATRIX,
                         ids=[("-".join(t) or "literal") + "".join(f",{n}={int(v)}" for n, v in
                                                                   zip(("host", "config", "params"), rest))
                              for t, *rest in MATRIX])
def test_print_expected_and_dry_run_name_the_same_archive(tmp_path, capsys, database, tokens, with_db_host,
                                                          with_config, with_params):
    pattern = tmp_path / "b" / "-".join(("itop",) + tokens)
    options = ["-f", pattern, "--db-port", "3306", "--history", tmp_path / "h.sqlite"]
    if with_db_host:
        options += ["--db-host", OPTION_HOST]
    if with_config:
        options += ["--itop-config", write_config(tmp_path / "itop", database)]
    else:
        options += ["--db-name", database, "--db-subname", SUBNAME]
    if with_params:
        params = tmp_path / "backup.params"
        params.write_text(f"backup_file = {tmp_path}/other\nmysql_bindir = /nowhere\ncheck_size_min = 1\n")
        options += ["--param-file", params]

    probe = run_check(*options, "--print-expected")
    status, out, err = runner(capsys, *options, "--dry-run")

    assert (probe.exit_code, status) == (0, 0), probe.stdout + err
    host = OPTION_HOST if with_db_host else CONFIG_HOST if with_config else ""
    values = {"__HOST__": host.split(":")[0], "__DB__": database, "__SUBNAME__": SUBNAME}
    expected = str(tmp_path / "b" / "-".join(("itop",) + tuple(values[t] for t in tokens))) + ".tar.gz"
    assert line_after("archive:", out) == expected
    assert line_after("expected name:", probe.stdout) == f"{expected} (written after " \
        + line_after("expected slot:", probe.stdout) + ")"


def test_the_probe_judges_ok_exactly_the_archive_the_runner_wrote(tmp_path, capsys, database):
    options = ["-f", tmp_path / "b" / "__HOST__-__DB__-__SUBNAME__-%Y-%m-%d_%H_%M",
               "--itop-config", write_config(tmp_path / "itop", database), "--history", tmp_path / "h.sqlite"]
    status, _, err = runner(capsys, *options)
    assert status == 0, err
    [archive] = (tmp_path / "b").glob("*.tar.gz")
    assert archive.name.startswith(f"127.0.0.1-{database}-{SUBNAME}-")

    probe = run_check(*options, "--verify", "dump")

    assert probe.exit_code == 0, probe.stdout
    assert probe.status_line.startswith(f"ITOP_BACKUP OK - {archive.name}: "), probe.status_line


def test_the_runner_names_in_the_timezone_option(tmp_path, capsys, database):
    zone = "Pacific/Kiritimati"  # UTC+14: its hour is no machine's local hour but at UTC+14
    options = ["-f", tmp_path / "__DB__-%H", "--itop-config", write_config(tmp_path / "itop", database),
               "--timezone", zone]
    before = datetime.now(ZoneInfo(zone)).hour
    status, out, err = runner(capsys, *options, "--dry-run")
    after = datetime.now(ZoneInfo(zone)).hour

    assert status == 0, err
    names = {f"{tmp_path}/{database}-{hour:02d}.tar.gz" for hour in (before, after)}
    assert line_after("archive:", out) in names


@pytest.mark.parametrize(("config", "message"), [
    ("<?php $MySettings = array('db_name' => 'itop', 'timezone' => 'Mars/Olympus');",
     "unknown timezone 'Mars/Olympus' (use an IANA name such as Europe/Paris)"),
    ("<?php $MyModuleSettings = array();", ": no $MySettings array"),
    ("<?php $MySettings = array('db_host' => 'db:abc', 'db_name' => 'itop');",
     ": db_host 'db:abc': expected a port number from 1 to 65535, found 'abc'"),
])
def test_a_config_the_probe_refuses_is_refused_by_the_runner_with_the_same_line(tmp_path, capsys, config,
                                                                                   message):
    path = tmp_path / "config-itop.php"
    path.write_text(config)
    options = ["-f", tmp_path / "x", "--itop-config", path]

    probe = run_check(*options)
    status, _, err = runner(capsys, *options)

    assert (probe.exit_code, status) == (3, 2)
    assert probe.stdout.endswith(f"{message}\n") and probe.stdout.count("\n") == 1, probe.stdout
    assert err.endswith(f"{message}\n") and err.count("\n") == 1, err
    assert probe.stdout.removeprefix("ITOP_BACKUP UNKNOWN - ") == err.removeprefix("itop-backup run: ")


def test_restore_takes_its_target_from_the_itop_config(tmp_path, capsys, new_database):
    path = tmp_path / "config-itop.php"
    path.write_text(f"<?php $MySettings = array('db_host' => '{CONFIG_HOST}', "
                    f"'db_name' => '{new_database}');")

    with pytest.raises(SystemExit) as exited:
        backup_main(["restore", str(tmp_path / "missing.tar.gz"), "--itop-config", str(path)])

    assert exited.value.code == 1  # not 2, "give the target database with --db-name": it is the config's
    assert capsys.readouterr().err.startswith(f"itop-backup restore: cannot read {tmp_path}/missing.tar.gz")
