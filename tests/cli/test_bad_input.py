"""Bad input ends in one line and the right exit status, never a traceback.

The probe answers UNKNOWN (3) when it cannot tell and CRITICAL (2) for an archive that
cannot be read; ``itop-backup`` exits 2 for bad options or configuration and 1 for a run
that failed. Each row of the tables below is one input that once ended in a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from check_itop_backup.cli.backup import backup_main
from tests.archive_corpus import itop_member, zip_archive
from tests.checkrun import place_archive, run_check

NOW = datetime(2026, 11, 27, 10, 0).astimezone()
PYTHON = [sys.executable, "-c"]
PROBE = PYTHON + ["from check_itop_backup.cli.check import check_main; check_main()"]
BACKUP = PYTHON + ["from check_itop_backup.cli.backup import backup_main; backup_main()"]


def php(body: str) -> str:
    return f"<?php\n{body}\n"


GOOD_SETTINGS = "$MySettings = array('db_host' => '127.0.0.1', 'db_name' => 'itop', 'db_user' => 'root');"


def zip_with(flag_bits: int = 0, method: int | None = None) -> bytes:
    """A zip of config and dump whose members are marked encrypted, or use another method."""
    raw = bytearray(zip_archive({"config-itop.php": itop_member("config-itop.php"),
                                 "itop-dump.sql": itop_member("itop-dump.sql")}))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        index = raw.find(signature)
        while index >= 0:
            raw[index + flags_at] |= flag_bits
            if method is not None:
                raw[index + flags_at + 2:index + flags_at + 4] = method.to_bytes(2, "little")
            index = raw.find(signature, index + 4)
    return bytes(raw)


class Workspace:
    """Files a case needs, under the test's tmp_path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, name: str, data: bytes | str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def config(self, body: str) -> str:
        return self.file("conf/production/config-itop.php", php(body))

    def archive(self, data: bytes, name: str = "itop.zip") -> str:
        path = Path(self.file(f"backups/{name}", data))
        os.utime(path, (NOW.timestamp() - 3600,) * 2)
        return str(path)

    def foreign_history(self) -> str:
        path = str(self.root / "foreign.sqlite")
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE notes (text)")
        return path

    def non_utf8_dir(self) -> str:
        directory = os.path.join(os.fsencode(self.root), b"caf\xe9")
        os.mkdir(directory)
        place_archive(Path(os.fsdecode(directory)) / "itop-2026-11-27.tar.gz", NOW)
        return os.fsdecode(directory)


def args_of(case, ws: Workspace) -> list[str]:
    return [str(arg) for arg in case(ws)]


PROBE_CASES = {  # id: (arguments, exit status, what the one line says)
    "timeout -1": (lambda ws: ["-f", ws.root / "x", "-t", "-1"], 3,
                   "bad arguments: argument -t/--timeout: invalid duration '-1'"),
    "timeout nan": (lambda ws: ["-f", ws.root / "x", "-t", "nan"], 3, "invalid duration 'nan'"),
    "timeout inf": (lambda ws: ["-f", ws.root / "x", "-t", "inf"], 3, "invalid duration 'inf'"),
    "timeout 0": (lambda ws: ["-f", ws.root / "x", "-t", "0"], 3, "a timeout must be above 0"),
    "min-history 0": (lambda ws: ["-f", ws.root / "x", "--min-history", "0"], 3,
                      "argument --min-history: expected a whole number of at least 1, found '0'"),
    "baseline-count -3": (lambda ws: ["-f", ws.root / "x", "--baseline-count", "-3"], 3,
                          "argument --baseline-count: expected a whole number of at least 1"),
    "size of 309 nines": (lambda ws: ["-f", ws.root / "x", "--size-min", "9" * 309], 3,
                          f"--size-min: size '{'9' * 37}...' is larger than any file"),
    "age of 309 nines": (lambda ws: ["-f", ws.root / "x", "-w", "9" * 309], 3,
                         f"--warning-age: duration '{'9' * 37}...' is longer than a century"),
    "module setting a string": (lambda ws: ["--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => 'daily');")], 3,
        "conf/production/config-itop.php: setting 'itop-backup' is 'daily', not an array"),
    "MySettings a string": (lambda ws: ["--itop-config", ws.config("$MySettings = 'abc';")], 3,
                            "config-itop.php: setting 'MySettings' is 'abc', not an array"),
    "week_days an array": (lambda ws: ["--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => array('week_days' => array()));")],
        3, "setting 'week_days' is an array, not a string"),
    "retention_count abc": (lambda ws: ["--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => array('retention_count' => 'abc'));")],
        3, "setting 'retention_count' is not a whole number: 'abc'"),
    "config /dev/zero": (lambda ws: ["-f", ws.root / "x", "--itop-config", "/dev/zero"], 3,
                         "cannot read iTop config /dev/zero: larger than 1048576 bytes"),
    "huge param file": (lambda ws: ["--param-file", ws.file("big.params", b"# x\n" * (300 << 10))], 3,
                        "big.params': larger than 1048576 bytes"),
    "array as array key": (lambda ws: ["--itop-config", ws.config("$MySettings = [[] => 1];")], 3,
                           "line 2: an array cannot be an array key"),
    "498 nested arrays": (lambda ws: ["--itop-config", ws.config(
        "$MySettings = " + "array(" * 498 + ")" * 498 + ";")], 3, "line 2: arrays nested more than 32 deep"),
    "%s next to a name beyond time_t": (lambda ws: [
        "-f", Path(ws.archive(b"x", "itop-99999999999999999999.tar.gz")).parent / "itop-%s"], 2,
        "ITOP_BACKUP CRITICAL - no archive"),
    "non-UTF-8 backup directory": (lambda ws: ["-f", ws.non_utf8_dir() + "/itop-%Y-%m-%d"], 3,
                                   "/caf\\xe9/itop-%Y-%m-%d' is not valid UTF-8: rename the directory"),
    "encrypted zip": (lambda ws: ["-f", ws.archive(zip_with(flag_bits=1)), "--verify", "dump"], 2,
                      "itop.zip fails dump verification: zip member config-itop.php cannot be read: "
                      "it is encrypted"),
    "zip method 99": (lambda ws: ["-f", ws.archive(zip_with(method=99)), "--verify", "dump"], 2,
                      "zip member config-itop.php cannot be read: it is compressed with method 99"),
    "db_host port abc": (lambda ws: [
        "-f", ws.archive(b"x"), "--itop-config",
        ws.config("$MySettings = array('db_host' => '127.0.0.1:abc', 'db_name' => 'itop');")], 3,
        "config-itop.php: db_host '127.0.0.1:abc': expected a port number from 1 to 65535, found 'abc'"),
}


def message_lines(output: str) -> list[str]:
    """The lines of *output* that are not argparse's usage block (which may follow an error)."""
    lines = output.splitlines()
    if any(line.startswith("usage:") for line in lines):
        lines = [line for line in lines if not line.startswith(("usage:", " "))]
    return lines


@pytest.mark.parametrize("case", PROBE_CASES, ids=str)
def test_the_probe_answers_bad_input_with_one_line(case, tmp_path, capsys):
    arguments, status, message = PROBE_CASES[case]

    run = run_check(*args_of(arguments, Workspace(tmp_path)), "--now", NOW.isoformat())

    lines = message_lines(run.stdout)
    assert (run.exit_code, len(lines)) == (status, 1), run.stdout
    assert message in lines[0]
    assert "Traceback" not in run.stdout and capsys.readouterr().err == ""


CONFIG_DB_HOST_ABC = "$MySettings = array('db_host' => '127.0.0.1:abc', 'db_name' => 'itop');"
BACKUP_CASES = {  # id: (arguments, exit status, what the one line on stderr says)
    "run --db-host port abc": (lambda ws: ["run", "--db-name", "x", "--db-host", "127.0.0.1:abc"], 2,
                               "itop-backup run: db_host '127.0.0.1:abc': expected a port number from 1 "
                               "to 65535, found 'abc'"),
    "run db_host port abc in the config": (lambda ws: ["run", "--itop-config", ws.config(CONFIG_DB_HOST_ABC)],
                                           2, "db_host '127.0.0.1:abc': expected a port number"),
    "run --db-port 70000": (lambda ws: ["run", "--db-name", "x", "--db-port", "70000"], 2,
                            "argument --db-port: expected a port number from 1 to 65535, found '70000'"),
    "run --jobs -1": (lambda ws: ["run", "--db-name", "x", "--jobs", "-1"], 2,
                      "itop-backup run: error: argument --jobs: expected a whole number of at least 1, "
                      "found '-1'"),
    "run --timeout 0": (lambda ws: ["run", "--db-name", "x", "--timeout", "0"], 2,
                        "argument --timeout: a timeout must be above 0"),
    "run non-UTF-8 password file": (lambda ws: [
        "run", "--db-name", "x", "--db-password-file", ws.file("pw", b"caf\xe9\n")], 2,
        "itop-backup run: cannot read password file "),
    "run non-UTF-8 option file": (lambda ws: [
        "run", "--db-name", "x", "--db-option-file", ws.file("my.cnf", b"[client]\npassword=caf\xe9\n")], 2,
        "/my.cnf: not UTF-8 text (byte 21)"),
    "run 70 kB password": (lambda ws: [
        "run", "--db-name", "x", "-f", ws.root / "x",
        "--db-password-file", ws.file("pw", "p" * 70_000 + "\n")], 2,
        "itop-backup run: the database password is 70000 bytes long; more than 1024 cannot be passed "
        "to the mysql client"),
    "run module setting a string": (lambda ws: ["run", "--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => 'abc');")], 2,
        "config-itop.php: setting 'itop-backup' is 'abc', not an array"),
    "run MySettings a string": (lambda ws: ["run", "--itop-config", ws.config("$MySettings = 'abc';")], 2,
                                "setting 'MySettings' is 'abc', not an array"),
    "run retention_count abc": (lambda ws: ["run", "--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => array('retention_count' => 'abc'));")],
        2, "setting 'retention_count' is not a whole number: 'abc'"),
    "run extra_files a string": (lambda ws: ["run", "--itop-config", ws.config(
        GOOD_SETTINGS + " $MyModuleSettings = array('itop-backup' => array('extra_files' => 'x'));")],
        2, "setting 'extra_files' is 'x', not an array"),
    "run config /dev/zero": (lambda ws: ["run", "--itop-config", "/dev/zero"], 2,
                             "cannot read iTop config /dev/zero: larger than 1048576 bytes"),
    "run non-UTF-8 backup directory": (lambda ws: [
        "run", "--db-name", "x", "-f", os.fsdecode(os.fsencode(ws.root) + b"/caf\xe9/itop")], 2,
        "/caf\\xe9/itop' is not valid UTF-8: rename the directory"),
    "verify encrypted zip": (lambda ws: ["verify", ws.archive(zip_with(flag_bits=1))], 1,
                             "itop-backup verify: CRITICAL: zip member config-itop.php cannot be read: "
                             "it is encrypted"),
    "verify zip method 99": (lambda ws: ["verify", ws.archive(zip_with(method=99))], 1,
                             "it is compressed with method 99"),
    "restore --timeout nan": (lambda ws: ["restore", "a.tar.gz", "--db-name", "x", "--timeout", "nan"], 2,
                              "argument --timeout: invalid duration 'nan'"),
    "restore --db-host port abc": (lambda ws: ["restore", "a.tar.gz", "--db-name", "x",
                                               "--db-host", "db:abc"], 2, "db_host 'db:abc': expected"),
    "history foreign file": (lambda ws: ["history", "--history", ws.foreign_history()], 1,
                             "foreign.sqlite: not a check_itop_backup history (it has other tables: notes)"),
}


def run_backup_cli(argv: list) -> int:
    with pytest.raises(SystemExit) as exited:
        backup_main([str(arg) for arg in argv])
    return exited.value.code


@pytest.mark.parametrize("case", BACKUP_CASES, ids=str)
def test_itop_backup_answers_bad_input_with_one_line(case, tmp_path, capsys):
    arguments, status, message = BACKUP_CASES[case]

    code = run_backup_cli(args_of(arguments, Workspace(tmp_path)))

    out, err = capsys.readouterr()
    lines = message_lines(err)
    assert (code, len(lines)) == (status, 1), err
    assert message in lines[0]
    assert "Traceback" not in out + err


def test_an_unwritable_directory_with_a_writable_lock_file_fails_the_run_in_one_line(
        tmp_path, mariadb_database, capsys, private_history):
    settings, database = mariadb_database
    target = tmp_path / "backups"
    target.mkdir()
    (target / ".itop-backup.lock").write_text("")
    with immutable(target):
        code = run_backup_cli(["run", "-q", "--db-host", f"{settings['host']}:{settings['port']}",
                               "--db-user", settings["user"], "--db-name", database, "-f", target / "itop"])

    err = capsys.readouterr().err
    assert (code, err) == (1, f"itop-backup run: cannot create a file in {target}: Operation not permitted\n")
    assert runs(private_history) == [("failed", f"cannot create a file in {target}: Operation not permitted")]


def test_a_percent_s_pattern_next_to_a_name_beyond_time_t_runs_retention_and_records_the_run(
        tmp_path, mariadb_database, private_history):
    settings, database = mariadb_database
    stranger = tmp_path / "itop-99999999999999999999.tar.gz"
    stranger.write_bytes(b"not ours to judge")

    code = run_backup_cli(["run", "-q", "--db-host", f"{settings['host']}:{settings['port']}", "--db-user",
                           settings["user"], "--db-name", database, "-f", tmp_path / "itop-%s",
                           "--retention-count", "1"])

    assert code == 0
    assert stranger.exists()  # no time in its name: retention cannot order it, so it keeps it
    assert [status for status, _ in runs(private_history)] == ["ok"]


def test_ctrl_c_ends_the_probe_unknown_in_one_line(tmp_path):
    fifo = tmp_path / "config-itop.php"
    os.mkfifo(fifo)  # opening it blocks: the probe is stuck reading the configuration
    probe = subprocess.Popen(PROBE + ["--itop-config", str(fifo)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_until_blocked(probe)

    probe.send_signal(signal.SIGINT)
    out, err = probe.communicate(timeout=30)

    assert (probe.returncode, out, err) == (
        3, "ITOP_BACKUP UNKNOWN - interrupted (SIGINT) while reading the configuration\n", "")


def test_ctrl_c_ends_a_run_in_one_line_leaving_no_archive_and_recording_the_run(
        tmp_path, mariadb_database, private_history):
    from tests.backup.test_run import slow_bindir

    settings, database = mariadb_database
    target = tmp_path / "backups"
    run = subprocess.Popen(BACKUP + ["run", "-q", "--db-host", f"{settings['host']}:{settings['port']}",
                                     "--db-user", settings["user"], "--db-name", database, "-f",
                                     str(target / "itop"), "--mysql-bindir", str(slow_bindir(tmp_path, 60))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(name.startswith(".itop-backup-") for name in os.listdir(target))
             if target.exists() else False)

    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)

    assert (run.returncode, out) == (1, "")
    assert err == f"itop-backup run: interrupted (SIGINT) while dumping {database} into {target}\n"
    assert os.listdir(target) == [".itop-backup.lock"]
    assert runs(private_history) == [("failed", err.split(": ", 1)[1].strip())]


def wait_until_blocked(process: subprocess.Popen) -> None:
    """Wait until *process* waits in open() for a writer to its FIFO."""
    wait_for(lambda: Path(f"/proc/{process.pid}/wchan").read_text() == "wait_for_partner")


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never came"
        time.sleep(0.05)


@contextlib.contextmanager
def immutable(path: Path):
    """Make *path* immutable (chattr +i): even root cannot create files in it."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def runs(history: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(history)) as connection:
        return connection.execute("SELECT status, message FROM runs ORDER BY id").fetchall()
