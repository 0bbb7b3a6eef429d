"""``verify`` and ``restore`` draw a progress line on a terminal, as ``run`` does, and nothing
when stderr is not one (cron, pipes). The mysql client stalls after 20 kB, so the
archive stays open, part read, until ``--timeout`` ends the command: a line is certainly drawn."""

from __future__ import annotations

import os
import pty
import re
import subprocess

from check_itop_backup.units import format_size
from tests.backup.test_restore import BACKUP, runner_archive, server_options, stalling_client  # noqa: F401


def on_a_terminal(argv: list) -> tuple[int, str]:
    """Run *argv* with stderr on a pseudo-terminal; return its exit status and what it drew there."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([str(arg) for arg in argv], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    return process.wait(timeout=60), drawn.decode()


def stalled(command: str, archive, settings, bindir, *extra: str) -> list:
    return BACKUP + [command, archive, *server_options(settings), "--mysql-bindir", bindir,
                     "--timeout", "2", *extra]


def test_restore_draws_its_progress_on_a_terminal_and_erases_it(runner_archive, new_database,  # noqa: F811
                                                                 tmp_path):
    settings, _, archive = runner_archive
    argv = stalled("restore", archive, settings, stalling_client(tmp_path), "--db-name", new_database)

    status, drawn = on_a_terminal(argv)
    piped = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=60)

    assert status == piped.returncode == 1
    of_size = re.escape(f"of {format_size(archive.stat().st_size)}), ")
    assert re.search(rf"\rrestoring b\.tar\.gz: \d+% \([\d.]+ [KM]?i?B {of_size}\ds elapsed\x1b\[K", drawn), \
        repr(drawn)
    erased, _, error = drawn.rpartition("\r\x1b[K")
    assert erased and error.startswith("itop-backup restore: timed out after 2s while loading b.tar.gz")
    assert piped.stderr.startswith("itop-backup restore: timed out after 2s") and "\r" not in piped.stderr


def test_a_test_restore_draws_its_progress_on_a_terminal(runner_archive, tmp_path):  # noqa: F811
    settings, _, archive = runner_archive
    argv = stalled("verify", archive, settings, stalling_client(tmp_path), "--level", "restore")

    status, drawn = on_a_terminal(argv)

    assert status == 1
    assert re.search(r"\rtest-restoring b\.tar\.gz: \d+% \(", drawn), repr(drawn)
    assert drawn.rpartition("\r\x1b[K")[2].startswith("itop-backup verify: timed out after 2s while loading "
                                                      "b.tar.gz into cib_scratch_")


def test_verify_draws_nothing_when_stderr_is_not_a_terminal(runner_archive):  # noqa: F811
    _, _, archive = runner_archive

    done = subprocess.run(BACKUP + ["verify", str(archive)], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stderr) == (0, "")
