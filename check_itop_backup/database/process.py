"""The one door to the database's programs (mysqldump, mysql and their MariaDB names).

A program is found in the configured bindir, else on PATH, and runs with our environment
minus any password variable. The password reaches it through a pipe
(``credentials.defaults_file_pipe``), never on its command line. We either read its stdout
(the dump) or write its stdin (the load), through a pipe of ``PIPE_SIZE``; the last lines
of its stderr are kept to say why it failed.

The dump stays in the run's process group: whoever kills that group (a terminal, a
supervisor) kills mysqldump with it. The load's client gets a group of its own, which
``kill()`` ends whole (a wrapper script's children too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence

from check_itop_backup import deadline
from check_itop_backup.database.server import DatabaseError, version_tuple
from check_itop_backup.itop.credentials import defaults_file_pipe
from check_itop_backup.itop.instance import PASSWORD_ENV, DatabaseSettings

PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size: fewer wake-ups, room while a line is checked
STDERR_LINES = 50
_PASSWORD_VARIABLES = ("MYSQL_PWD", PASSWORD_ENV)


def find_program(names: Sequence[str], bindir: str = "") -> str:
    """Return the full path of the first of *names* in *bindir*, else on PATH; raise DatabaseError."""
    for name in names:
        found = shutil.which(name, path=bindir or None)
        if found:
            return os.path.abspath(found)
    raise DatabaseError(f"neither {' nor '.join(names)} found {'in ' + bindir if bindir else 'on PATH'}")


def port_options(host: str, port: int | None) -> tuple[str, ...]:
    """Return iTop's port/transport options (``GetMysqlCliPortAndTransportOptions``).

    >>> port_options("localhost", None), port_options("LocalHost", 3307)
    ((), ('--port=3307', '--protocol=tcp'))
    >>> port_options("127.0.0.1", None), port_options("db", 3307)
    (('--port=3306',), ('--port=3307',))
    """
    if host.lower() == "localhost":
        return () if port is None else (f"--port={port}", "--protocol=tcp")
    return (f"--port={port or 3306}",)


def tls_options(settings: DatabaseSettings, version: str) -> tuple[str, ...]:
    """Return iTop's TLS options (``GetMysqlCliTlsOptions``): none unless TLS is enabled; MySQL
    5.7.11 and later (server *version*) want ``--ssl-mode`` rather than ``--ssl``."""
    if not settings.tls:
        return ()
    if "mariadb" not in version.lower() and version_tuple(version) >= (5, 7, 11):
        mode = ("--ssl-mode=VERIFY_CA",) if settings.tls_ca else ("--ssl-mode=REQUIRED",)
    else:
        mode = ("--ssl",)
    return mode + ((f"--ssl-ca={settings.tls_ca}",) if settings.tls_ca else ())


def connection_options(settings: DatabaseSettings, version: str) -> tuple[str, ...]:
    """Return the host, port, user and TLS options both programs take, as iTop gives them."""
    return ((f"--host={settings.host}",) + port_options(settings.host, settings.port)
            + (f"--user={settings.user}",) + tls_options(settings, version))


def environment() -> dict[str, str]:
    """The environment of a database program: ours without any password variable."""
    return {key: value for key, value in os.environ.items() if key not in _PASSWORD_VARIABLES}


def help_text(program: str) -> bytes:
    """Return what ``program --no-defaults --help`` prints (b"" when it cannot run)."""
    try:
        return subprocess.run((program, "--no-defaults", "--help"), capture_output=True, timeout=30,
                              check=False, env=environment()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return b""


class Child:
    """A running database program. *command* builds its argv from the password option
    (``--defaults-extra-file=/dev/fd/N``, which it must put first); with *feed* we write its
    stdin (``pipe``) and it writes nothing, in a process group of its own; else we read its
    stdout (``pipe``)."""

    def __init__(self, command: Callable[[str], Sequence[str]], password: str, *, feed: bool = False) -> None:
        with defaults_file_pipe(password) as (fd, option):
            self.command = tuple(command(option))
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if feed else subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(fd,), env=environment(), start_new_session=feed)
        self.pipe = self.process.stdin if feed else self.process.stdout
        with contextlib.suppress(OSError):  # refused: the default size works too
            import fcntl

            fcntl.fcntl(self.pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
        self.stderr_lines: list[str] = []
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_lines = (self.stderr_lines + [line])[-STDERR_LINES:]

    def wait(self) -> int:
        """Close its stdin (when fed), wait for it to end and for its stderr; return its exit status."""
        if self.pipe is self.process.stdin:
            self.pipe.close()
        status = self.process.wait()
        self._stderr_reader.join()
        return status

    def kill(self) -> None:
        """Kill it, with its process group when it has one, after a failure elsewhere; wait for it,
        signals held back."""
        with deadline.shielded():
            with contextlib.suppress(ProcessLookupError):
                if self.pipe is self.process.stdin:
                    os.killpg(self.process.pid, signal.SIGKILL)
                elif self.process.poll() is None:
                    self.process.kill()
            self.process.wait()
            with contextlib.suppress(OSError):
                self.pipe.close()
