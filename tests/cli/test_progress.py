"""``verify`` and ``restore`` draw a progress line on a terminal, as ``run`` does, and nothing
when stderr is not one (cron, pipes). The mysql client stalls after 20 kB, so the archive
stays open, part read, until SIGTERM ends the command once the line is drawn (or, piped, once
the client loads): no test here depends on how fast the machine gets there."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess

from check_itop_backup.units import format_size
from tests.backup.test_restore import (  # noqa: F401 - a fixture
    BACKUP,
    loading_clients,
    runner_archive,
    server_options,
    stalling_client,
)


def on_a_terminal(argv: list, drawn_line: str) -> tuple[int, str]:
    """Run *argv* with stderr on a pseudo-terminal, send it SIGTERM once what it drew there
    matches *drawn_line* (a regular expression) and its mysql client loads; return its exit
    status and what it drew."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    drawn, terminated = b"", False
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        drawn += chunk
        if not terminated and re.search(drawn_line, drawn.decode(errors="replace")):
            loading_clients(process, seconds=60)
            process.send_signal(signal.SIGTERM)
            terminated = True
    os.close(controller)
    return process.wait(timeout=60), drawn.decode()


def piped(argv: list) -> subprocess.CompletedProcess:
    """Run *argv* with stderr on a pipe, send it SIGTERM once its mysql client loads."""
    process = subprocess.Popen([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loading_clients(process, seconds=60)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def stalled(command: str, archive, settings, bindir, *extra: str) -> list:
    return BACKUP + [command, archive, *server_options(settings), "--mysql-bindir", bindir, *extra]


def test_restore_draws_its_progress_on_a_terminal_and_erases_it(runner_archive, new_database,  # noqa: F811
                                                                 tmp_path):
    settings, _, archive = runner_archive
    argv = stalled("restore", archive, settings, stalling_client(tmp_path), "--db-name", new_database)

    of_size = re.escape(f"of {format_size(archive.stat().st_size)}), ")
    line = rf"\rrestoring b\.tar\.gz: \d+% \([\d.]+ [KM]?i?B {of_size}\ds elapsed\x1b\[K"

    status, drawn = on_a_terminal(argv, line)
    without_terminal = piped(argv)

    assert status == without_terminal.returncode == 1
    assert re.search(line, drawn), repr(drawn)
    erased, _, error = drawn.rpartition("\r\x1b[K")
    assert erased and error.startswith("itop-backup restore: terminated by SIGTERM while loading b.tar.gz")
    assert without_terminal.stderr.startswith("itop-backup restore: terminated by SIGTERM while loading") \
        and "\r" not in without_terminal.stderr


def test_a_test_restore_draws_its_progress_on_a_terminal(runner_archive, tmp_path):  # noqa: F811
    settings, _, archive = runner_archive
    argv = stalled("verify", archive, settings, stalling_client(tmp_path), "--level", "restore")

    status, drawn = on_a_terminal(argv, r"\rtest-restoring b\.tar\.gz: \d+% \(")

    assert status == 1
    assert drawn.rpartition("\r\x1b[K")[2].startswith("itop-backup verify: terminated by SIGTERM while "
                                                      "loading b.tar.gz into cib_scratch_")


def test_verify_draws_nothing_when_stderr_is_not_a_terminal(runner_archive):  # noqa: F811
    _, _, archive = runner_archive

    done = subprocess.run(BACKUP + ["verify", str(archive)], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stderr) == (0, "")
