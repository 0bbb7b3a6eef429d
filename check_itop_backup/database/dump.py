"""The database side of a backup: PyMySQL pre-flight, iTop's mysqldump command, the dump process.

The command follows iTop's ``DBBackup::DoBackup`` (BACKUP-SPEC §1.3): ``--opt
--skip-lock-tables --default-character-set=<utf8|utf8mb4> --add-drop-database
--single-transaction``, iTop's host/port/transport and TLS rules, and the table list when
``db_subname`` (the table prefix) is set. Unlike iTop, the prefix is LIKE-escaped, the
output goes to a pipe (never a file), and the password goes through ``credentials``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from check_itop_backup import deadline
from check_itop_backup.archive.dumpscan import TRAILER
from check_itop_backup.itop.credentials import PASSWORD_ENV
from check_itop_backup.itop.instance import DatabaseSettings

DUMP_PROGRAMS = ("mysqldump", "mariadb-dump")
SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock")
_STDERR_LINES = 50
CONNECT_TIMEOUT_S = 10.0
QUERY_TIMEOUT_S = 600.0  # no byte from the server for this long: the statement (or server) is stuck


class DumpError(Exception):
    """The database cannot be dumped; the message is one line for people."""


@dataclass(frozen=True)
class Table:
    """One table or view to dump; *rows* is None for views."""

    name: str
    kind: str
    rows: int | None


@dataclass(frozen=True)
class ServerFacts:
    """What the pre-flight learned from the server."""

    version: str
    charset: str
    tables: tuple[Table, ...]
    data_size: int  # data + index bytes of the selected tables, an estimate of the dump size

    @property
    def is_mysql_with_ssl_mode(self) -> bool:
        """True for MySQL >= 5.7.11, whose client wants ``--ssl-mode`` rather than ``--ssl``."""
        return "mariadb" not in self.version.lower() and version_tuple(self.version) >= (5, 7, 11)


def version_tuple(version: str) -> tuple[int, ...]:
    """Return the leading numbers of a server version string.

    >>> version_tuple("10.11.19-MariaDB-0+deb12u1"), version_tuple("5.5.32-log")
    ((10, 11, 19), (5, 5, 32))
    """
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def client_charset(version: str) -> str:
    """Return iTop's dump charset: ``utf8`` below server 5.5.33, else ``utf8mb4``."""
    return "utf8" if version_tuple(version) < (5, 5, 33) else "utf8mb4"


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


def tls_options(settings: DatabaseSettings, facts: ServerFacts) -> tuple[str, ...]:
    """Return iTop's TLS options (``GetMysqlCliTlsOptions``): none unless TLS is enabled."""
    if not settings.tls:
        return ()
    if facts.is_mysql_with_ssl_mode:
        mode = ("--ssl-mode=VERIFY_CA",) if settings.tls_ca else ("--ssl-mode=REQUIRED",)
    else:
        mode = ("--ssl",)
    return mode + ((f"--ssl-ca={settings.tls_ca}",) if settings.tls_ca else ())


def dump_command(program: str, defaults_option: str, settings: DatabaseSettings,
                 facts: ServerFacts) -> tuple[str, ...]:
    """Return the mysqldump argv; *defaults_option* (``--defaults-extra-file=…``) comes first."""
    return (
        (program, defaults_option, "--opt", "--skip-lock-tables",
         f"--default-character-set={facts.charset}", "--add-drop-database", "--single-transaction",
         f"--host={settings.host}")
        + port_options(settings.host, settings.port)
        + (f"--user={settings.user}",)
        + tls_options(settings, facts)
        + ("--", settings.name)
        + (tuple(table.name for table in facts.tables) if settings.subname else ())
    )


def find_dump_program(bindir: str = "") -> str:
    """Return the full path of mysqldump (or mariadb-dump) in *bindir*, else on PATH."""
    for name in DUMP_PROGRAMS:
        found = shutil.which(name, path=bindir or None)
        if found:
            return os.path.abspath(found)
    where = f"in {bindir}" if bindir else "on PATH"
    raise DumpError(f"neither mysqldump nor mariadb-dump found {where}")


def quote_name(name: str) -> str:
    """Return *name* as a quoted MySQL identifier.

    >>> quote_name("odd`name")
    '`odd``name`'
    """
    return "`" + name.replace("`", "``") + "`"


def connect(settings: DatabaseSettings, database: str | None = None):
    """Return a PyMySQL connection (TLS as configured); raise DumpError saying why not.

    Connecting, and every read or write on the connection, gives up after its timeout, cut
    to the run's remaining time: a server that accepts but never answers cannot hang a run.
    Once that time is up, the clean-up (dropping a scratch database) gets the full timeouts.
    """
    import pymysql

    tls = {"ca": settings.tls_ca} if settings.tls_ca else {"check_hostname": False}
    socket = None
    if settings.host.lower() == "localhost" and settings.port is None:  # mysqldump uses the socket
        socket = next((path for path in SOCKETS if os.path.exists(path)), None)
    left = max(deadline.current.remaining() or QUERY_TIMEOUT_S, 0.1)
    try:
        return pymysql.connect(
            host=settings.host, port=settings.port or 3306, unix_socket=socket, user=settings.user,
            password=settings.password, database=database, connect_timeout=min(CONNECT_TIMEOUT_S, left),
            read_timeout=min(QUERY_TIMEOUT_S, left), write_timeout=min(QUERY_TIMEOUT_S, left),
            ssl=tls if settings.tls else None, charset="utf8mb4")
    except OSError as error:  # TLS set-up: the CA file, the handshake (ssl.SSLError is an OSError)
        what = f"the TLS CA file {settings.tls_ca!r}" if settings.tls_ca else "TLS"
        raise DumpError(f"cannot use {what} with the database server {settings.host}:"
                        f"{settings.port or 3306}: {error.strerror or error}") from None
    except pymysql.MySQLError as error:
        reason = error.args[1] if len(error.args) > 1 else str(error)
        raise DumpError(f"cannot connect to the database server {settings.host}:"
                        f"{settings.port or 3306} as '{settings.user}': {reason}") from None


def preflight(settings: DatabaseSettings) -> ServerFacts:
    """Ask the server what the dump needs: version, charset, tables with exact row counts.

    Raise DumpError when the server is unreachable, the login fails, the database does not
    exist or no table carries the prefix. Rows are counted in one consistent snapshot.
    """
    import pymysql

    with connect(settings) as connection, connection.cursor() as cursor:
        try:
            cursor.execute("SELECT VERSION()")
            version = cursor.fetchone()[0]
            cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                           (settings.name,))
            if cursor.fetchone() is None:
                raise DumpError(f"the database '{settings.name}' does not seem to exist")
            cursor.execute(
                "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0)"
                " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s"
                " ORDER BY TABLE_NAME", (settings.name, _like_prefix(settings.subname)))
            listed = cursor.fetchall()
            if settings.subname and not listed:
                raise DumpError(f"no table has been found with the prefix '{settings.subname}'")
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            tables = tuple(_table(cursor, settings.name, name, kind) for name, kind, _ in listed)
            cursor.execute("COMMIT")
        except pymysql.MySQLError as error:
            raise DumpError(f"pre-flight query failed: {error.args[-1]}") from None
    return ServerFacts(version, client_charset(version), tables, sum(int(size) for *_, size in listed))


def _like_prefix(prefix: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


def _table(cursor, database: str, name: str, kind: str) -> Table:
    if kind == "VIEW":
        return Table(name, "view", None)
    quoted = ".".join("`" + part.replace("`", "``") + "`" for part in (database, name))
    cursor.execute(f"SELECT COUNT(*) FROM {quoted}")
    return Table(name, "table", int(cursor.fetchone()[0]))


def meaningful_line(lines: Sequence[str]) -> str:
    """Return the line of mysqldump's stderr that says what went wrong.

    >>> meaningful_line(["Warning: x", "mysqldump: Error 2020: Got packet bigger than "
    ...                  "'max_allowed_packet' bytes", "-- end"])
    "mysqldump: Error 2020: Got packet bigger than 'max_allowed_packet' bytes"
    """
    stripped = [line.strip() for line in lines if line.strip()]
    errors = [line for line in stripped if "error" in line.lower()]
    return (errors or stripped or ["no message"])[-1]


class DumpProcess:
    """A running dump: read its SQL from ``stdout``; ``finish()`` checks how it ended."""

    def __init__(self, command: Sequence[str], pass_fds: Sequence[int] = ()) -> None:
        self.command = tuple(command)
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=tuple(pass_fds), env=_clean_environment())
        self.stdout = self.process.stdout
        _enlarge_pipe(self.stdout.fileno())
        self.stderr_lines: list[str] = []
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_lines = (self.stderr_lines + [line])[-_STDERR_LINES:]

    def finish(self, tail: bytes) -> list[str]:
        """Wait for the dump; return its stderr lines (warnings) or raise DumpError.

        *tail* is the end of the dump: without mysqldump's trailer the dump is incomplete.
        """
        status = self.process.wait()
        self._stderr_reader.join()
        if status != 0:
            raise DumpError(f"mysqldump failed (exit {status}): {meaningful_line(self.stderr_lines)}")
        if not tail.rstrip().rsplit(b"\n", 1)[-1].startswith(TRAILER):
            raise DumpError("the dump is incomplete: it does not end with mysqldump's "
                            f"'{TRAILER.decode()}' trailer")
        return self.stderr_lines

    def kill(self) -> None:
        """Stop the dump (after a failure elsewhere)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _clean_environment() -> dict[str, str]:
    """The environment for mysqldump: ours without any password variable."""
    return {key: value for key, value in os.environ.items()
            if key not in ("MYSQL_PWD", PASSWORD_ENV)}


def _enlarge_pipe(fd: int) -> None:
    """Give the dump pipe 1 MiB of buffer (fewer wake-ups); harmless when refused."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass
