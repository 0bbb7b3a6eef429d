"""Nothing hangs: the probe's ``-t`` and ``--timeout`` of ``run`` and
``restore`` are real bounds, even against a stalled peer or a lock held by another process.

Every test runs the command as its own process, as cron or a monitoring system does, and
allows generous wall-clock bounds: they only tell "ends" from "hangs".
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from tests.backup.test_restore import databases, runner_archive, stalling_client  # noqa: F401 - a fixture
from tests.backup.test_run import slow_bindir
from tests.checkrun import place_archive

PROBE = [sys.executable, "-c", "from check_itop_backup.cli.check import check_main; check_main()"]
BACKUP = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()"]


def run(argv: list, block_alarm: bool = False, **options) -> tuple[int, str, str, float]:
    """Run *argv*; return (exit status, stdout, stderr, seconds). With *block_alarm* the process
    starts with SIGALRM blocked, as when a system call holds the alarm back."""
    started = time.monotonic()
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=120,
        preexec_fn=(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})) if block_alarm
        else None, **options)
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(socket.timeout, OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted + [listener]:
        connection.close()


def test_a_history_locked_by_another_writer_ends_the_probe_at_its_timeout(tmp_path, private_history):
    archive = place_archive(tmp_path / "itop-2026-11-26.tar.gz", datetime(2026, 11, 26, 23, 40))
    probe = PROBE + ["-f", tmp_path / "itop-%Y-%m-%d", "--now", "2026-11-27T10:00"]
    assert run(probe)[0] == 0  # creates the history
    holder = sqlite3.connect(private_history, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, in the middle of its transaction
    try:
        status, out, err, seconds = run(probe + ["-t", "1"])
    finally:
        holder.close()

    assert (status, out, err) == (3, f"ITOP_BACKUP UNKNOWN - timed out after 1s while writing the "
                                     f"history {private_history}\n", "")
    assert seconds < 15  # SQLite's own busy timeout is 20 s
    assert archive.exists()


def test_a_stall_the_alarm_cannot_interrupt_is_ended_by_the_watchdog(tmp_path):
    fifo = tmp_path / "config-itop.php"
    os.mkfifo(fifo)  # no writer ever comes: open() waits for good

    status, out, err, seconds = run(PROBE + ["--itop-config", fifo, "-t", "0.5"], block_alarm=True)

    assert (status, out, err) == (3, "ITOP_BACKUP UNKNOWN - timed out after 0.5s while reading the "
                                     "configuration\n", "")
    assert seconds < 15


def test_the_watchdog_answers_in_json_too(tmp_path):
    fifo = tmp_path / "config-itop.php"
    os.mkfifo(fifo)

    status, out, _, _ = run(PROBE + ["--itop-config", fifo, "-t", "0.5", "--format", "json"],
                            block_alarm=True)

    assert status == 0  # Zabbix reads the state from the JSON object
    assert out.startswith('{"state": "UNKNOWN", "exit_code": 3, "message": "timed out after 0.5s while '
                          'reading the configuration"') and out.count("\n") == 1


def test_a_server_that_never_answers_ends_the_run_at_its_timeout(tmp_path, silent_server, private_history):
    status, out, err, seconds = run(BACKUP + ["run", "-q", "--db-host", f"127.0.0.1:{silent_server}",
                                              "--db-name", "itop", "-f", tmp_path / "itop", "--timeout", "1"])

    assert (status, out) == (1, "")
    assert err == ("itop-backup run: timed out after 1s while asking the database server 127.0.0.1 "
                   "about itop\n")
    assert seconds < 30
    assert sorted(os.listdir(tmp_path)) == [".itop-backup.lock", "history.sqlite"]


def test_the_connection_itself_times_out_when_the_alarm_is_held_back(tmp_path, silent_server):
    status, _, err, seconds = run(BACKUP + ["run", "-q", "--db-host", f"127.0.0.1:{silent_server}",
                                            "--db-name", "itop", "-f", tmp_path / "itop", "--timeout", "1"],
                                  block_alarm=True)

    assert (status, err) == (1, f"itop-backup run: cannot connect to the database server 127.0.0.1:"
                                f"{silent_server} as 'root': Lost connection to MySQL server during query "
                                "(timed out)\n")
    assert seconds < 30


def test_a_restore_from_a_server_that_never_answers_ends_at_its_timeout(tmp_path, silent_server):
    archive = place_archive(tmp_path / "itop.tar.gz", datetime(2026, 11, 26, 23, 40))

    status, out, err, seconds = run(BACKUP + ["restore", archive, "--db-host", f"127.0.0.1:{silent_server}",
                                              "--db-name", "itop", "--timeout", "1"])

    assert (status, out) == (1, "")
    assert err.startswith("itop-backup restore: timed out after 1s while ") and err.count("\n") == 1
    assert seconds < 30


def test_a_run_out_of_time_leaves_no_archive_and_is_recorded_failed(tmp_path, mariadb_database,
                                                                    private_history):
    settings, database = mariadb_database
    target = tmp_path / "backups"

    status, out, err, seconds = run(BACKUP + [
        "run", "-q", "--db-host", f"{settings['host']}:{settings['port']}", "--db-user", settings["user"],
        "--db-name", database, "-f", target / "itop", "--mysql-bindir", slow_bindir(tmp_path, 60),
        "--timeout", "2"])

    message = f"timed out after 2s while dumping {database} into {target}"
    assert (status, out, err) == (1, "", f"itop-backup run: {message}\n")
    assert seconds < 30
    assert os.listdir(target) == [".itop-backup.lock"]  # neither an archive nor a temporary
    with contextlib.closing(sqlite3.connect(private_history)) as history:
        assert history.execute("SELECT status, message, archive_path FROM runs").fetchall() == [
            ("failed", message, None)]


def test_a_restore_out_of_time_drops_its_scratch_database(runner_archive, new_database,  # noqa: F811
                                                           tmp_path):
    settings, _, archive = runner_archive
    bindir = stalling_client(tmp_path)

    status, out, err, seconds = run(BACKUP + [
        "restore", archive, "--db-host", f"{settings['host']}:{settings['port']}", "--db-user",
        settings["user"], "--db-name", new_database, "--mysql-bindir", bindir, "--timeout", "2"])

    assert (status, out) == (1, "")
    loading = re.match(r"itop-backup restore: timed out after 2s while loading b\.tar\.gz "
                       r"into (cib_restore_\w+)", err)
    assert loading
    assert err.count("\n") == 1
    assert seconds < 30
    assert loading[1] not in databases(settings, "cib_restore_")  # its scratch database dropped
    assert new_database not in databases(settings, "cib_test_r_")  # the target not created


def test_a_70_kb_password_is_refused_at_once_instead_of_filling_the_pipe(tmp_path):
    env = dict(os.environ, ITOP_BACKUP_DB_PASSWORD="p" * 70_000)

    status, out, err, seconds = run(BACKUP + ["run", "--db-name", "itop", "-f", tmp_path / "itop"], env=env)

    assert (status, out) == (2, "")
    assert err == ("itop-backup run: the database password is 70000 bytes long; more than 1024 cannot be "
                   "passed to the mysql client\n")
    assert seconds < 30


def test_the_longest_accepted_password_reaches_the_real_client_through_the_pipe(mariadb_server):
    from check_itop_backup.itop.credentials import MAX_PASSWORD_BYTES, defaults_file_pipe

    password = '\\"' * (MAX_PASSWORD_BYTES // 2)  # every character escaped: the longest pipe content
    client = subprocess.run(["sh", "-c", "command -v mariadb || command -v mysql"], capture_output=True,
                            text=True, check=True).stdout.strip()
    with defaults_file_pipe(password) as (fd, option):
        result = subprocess.run([client, option, "--print-defaults"], pass_fds=(fd,), capture_output=True,
                                text=True, timeout=30)

    assert result.returncode == 0
    assert "--password=" + password in result.stdout


@pytest.mark.parametrize("option, what", [("--itop-config", "cannot read iTop config /dev/zero"),
                                          ("--param-file", "could not load parameter file '/dev/zero'")])
def test_reading_dev_zero_as_a_config_is_one_line_in_bounded_memory(option, what):
    measure = ("import resource, subprocess, sys; "
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "print(done.stdout, end='')")

    status, out, _, seconds = run([sys.executable, "-c", measure, *PROBE, option, "/dev/zero", "-f", "/x"])

    code, max_rss_kib = out.splitlines()[0].split()
    assert (status, code) == (0, "3")
    assert out.splitlines()[1:] == [f"ITOP_BACKUP UNKNOWN - {what}: larger than 1048576 bytes"]
    assert int(max_rss_kib) < 64 << 10
    assert seconds < 30
