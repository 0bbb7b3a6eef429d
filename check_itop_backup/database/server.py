"""The database server: connecting, quoting, what it holds, scratch databases, the live tables.

Every connection goes through ``connect`` (TLS as configured, timeouts cut to the run's
deadline); every failure is a ``DatabaseError`` whose message is one line for people.
``live_tables`` lists the live iTop database's tables, to compare with a dump
(``--compare-live-db``), with the iTop instance's settings (itop/instance.py: options over
config-itop.php); only base tables carrying the prefix are listed (views are not in every dump).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from check_itop_backup import deadline
from check_itop_backup.itop.instance import DatabaseSettings

SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock")
CONNECT_TIMEOUT_S = 10.0
QUERY_TIMEOUT_S = 600.0  # no byte from the server for this long: the statement (or server) is stuck
SCRATCH_PREFIX = "cib_restore_"
LOCK_PREFIX = "cib_run_"
_ACCESS_DENIED = (1044, 1227)  # ER_DBACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR


class DatabaseError(Exception):
    """The server cannot be used, or a program or statement failed; the message is one line for people."""


class ScratchRefusedError(DatabaseError):
    """The account may not create the scratch database; the message names the GRANT it needs."""


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


def quote_name(name: str) -> str:
    """Return *name* as a quoted MySQL identifier.

    >>> quote_name("odd`name")
    '`odd``name`'
    """
    return "`" + name.replace("`", "``") + "`"


def connect(settings: DatabaseSettings, database: str | None = None):
    """Return a PyMySQL connection (TLS as configured); raise DatabaseError saying why not.

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
        raise DatabaseError(f"cannot use {what} with the database server {settings.host}:"
                            f"{settings.port or 3306}: {error.strerror or error}") from None
    except pymysql.MySQLError as error:
        reason = error.args[1] if len(error.args) > 1 else str(error)
        raise DatabaseError(f"cannot connect to the database server {settings.host}:"
                            f"{settings.port or 3306} as '{settings.user}': {reason}") from None


def preflight(settings: DatabaseSettings) -> ServerFacts:
    """Ask the server what the dump needs: version, charset, tables with exact row counts.

    Raise DatabaseError when the server is unreachable, the login fails, the database does not
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
                raise DatabaseError(f"the database '{settings.name}' does not seem to exist")
            cursor.execute(
                "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0)"
                " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME LIKE %s"
                " ORDER BY TABLE_NAME", (settings.name, _like_prefix(settings.subname)))
            listed = cursor.fetchall()
            if settings.subname and not listed:
                raise DatabaseError(f"no table has been found with the prefix '{settings.subname}'")
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            tables = tuple(_table(cursor, settings.name, name, kind) for name, kind, _ in listed)
            cursor.execute("COMMIT")
        except pymysql.MySQLError as error:
            raise DatabaseError(f"pre-flight query failed: {error.args[-1]}") from None
    return ServerFacts(version, client_charset(version), tables, sum(int(size) for *_, size in listed))


def _like_prefix(prefix: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


def _table(cursor, database: str, name: str, kind: str) -> Table:
    if kind == "VIEW":
        return Table(name, "view", None)
    cursor.execute(f"SELECT COUNT(*) FROM {quote_name(database)}.{quote_name(name)}")
    return Table(name, "table", int(cursor.fetchone()[0]))


def server_version(settings: DatabaseSettings) -> str:
    """Return the server's version string; raise DatabaseError when it cannot be reached."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        return cursor.fetchone()[0]


def new_token() -> str:
    """A run's token: it names the run's scratch database, load account and replaced tables."""
    return uuid.uuid4().hex[:16]


@contextlib.contextmanager
def run_lock(settings: DatabaseSettings, token: str) -> Iterator[None]:
    """Hold the server-side lock that marks the objects of run *token* as alive (recovery.py)."""
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", (LOCK_PREFIX + token,))
        yield
    finally:
        connection.close()


@contextlib.contextmanager
def scratch_database(settings: DatabaseSettings, prefix: str = SCRATCH_PREFIX,
                     token: str = "") -> Iterator[str]:
    """Create a uniquely named, empty utf8mb4 database and yield its name; drop it afterwards,
    whatever ends the block (SIGTERM and the deadline's alarm are held back while dropping).
    The run's lock is held meanwhile: it tells this run from a killed one (recovery.py)."""
    token = token or new_token()
    name = f"{prefix}{token}"
    with run_lock(settings, token):
        _create_scratch(settings, name, prefix)
        try:
            yield name
        finally:
            with deadline.shielded():
                drop_database(settings, name)


def _create_scratch(settings: DatabaseSettings, name: str, prefix: str) -> None:
    """Create the scratch database; raise ScratchRefusedError, naming the GRANT, when the
    account has no right to (iTop's usual account has ALL on the iTop database only)."""
    import pymysql

    with connect(settings) as connection, connection.cursor() as cursor:
        try:
            cursor.execute(f"CREATE DATABASE {quote_name(name)} CHARACTER SET utf8mb4 "
                           "COLLATE utf8mb4_unicode_ci")
        except pymysql.MySQLError as error:
            if error.args[0] not in _ACCESS_DENIED:
                raise DatabaseError(f"CREATE DATABASE {name} failed: {error.args[-1]}") from None
            cursor.execute("SELECT CURRENT_USER()")
            user, _, host = cursor.fetchone()[0].rpartition("@")
            pattern = prefix.replace("_", "\\_") + "%"
            raise ScratchRefusedError(
                f"{settings.user} may not create the scratch database {name} ({error.args[-1]}): "
                f"GRANT ALL ON `{pattern}`.* TO '{user}'@'{host}'") from None


def create_database(settings: DatabaseSettings) -> None:
    """Create the target database ``settings.name`` (utf8mb4) unless it exists."""
    execute(settings, f"CREATE DATABASE IF NOT EXISTS {quote_name(settings.name)} "
                      "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def drop_database(settings: DatabaseSettings, name: str) -> None:
    """Drop database *name*, first killing the sessions still using it (a killed client's)."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST "
                       "WHERE DB = %s AND ID != CONNECTION_ID()", (name,))
        for (session,) in cursor.fetchall():
            with contextlib.suppress(Exception):
                cursor.execute(f"KILL {int(session)}")
        cursor.execute(f"DROP DATABASE IF EXISTS {quote_name(name)}")


def execute(settings: DatabaseSettings, *statements: str, database: str | None = None) -> None:
    """Run *statements* on one connection; raise DatabaseError naming the first one's start."""
    import pymysql

    try:
        with connect(settings, database) as connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    except pymysql.MySQLError as error:
        raise DatabaseError(f"{statements[0].split(' (')[0]} failed: {error.args[-1]}") from None


def target_tables(settings: DatabaseSettings) -> list[str] | None:
    """Return the tables and views of the target database, or None when it does not exist."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (settings.name,))
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                       "ORDER BY TABLE_NAME", (settings.name,))
        return [row[0] for row in cursor.fetchall()]


def objects_in(cursor, schema: str) -> dict[str, list[str]]:
    """Return the ``tables``, ``views``, ``triggers`` and ``routines`` (with events) of *schema*."""
    cursor.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                   "ORDER BY TABLE_NAME", (schema,))
    listed = cursor.fetchall()
    cursor.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                   "ORDER BY CREATED, TRIGGER_NAME", (schema,))
    triggers = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s "
                   "UNION ALL SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
                   (schema, schema))
    return {"tables": [name for name, kind in listed if kind != "VIEW"],
            "views": [name for name, kind in listed if kind == "VIEW"],
            "triggers": triggers, "routines": [row[0] for row in cursor.fetchall()]}


def schema_objects(settings: DatabaseSettings, schema: str) -> dict[str, list[str]]:
    """``objects_in`` on a connection of its own."""
    with connect(settings) as connection, connection.cursor() as cursor:
        return objects_in(cursor, schema)


def drop_all_but(settings: DatabaseSettings, keep: list[str]) -> None:
    """Drop the tables and views of the target database that are not in *keep*."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                       (settings.name,))
        for name, kind in cursor.fetchall():
            if name not in keep:
                cursor.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS "
                               f"{quote_name(settings.name)}.{quote_name(name)}")


def table_rows(settings: DatabaseSettings, schema: str) -> dict[str, tuple[str, int | None]]:
    """Return {name: (type, rows)} of what *schema* holds (rows None for views)."""
    with connect(settings, schema) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                       "ORDER BY TABLE_NAME", (schema,))
        found = {}
        for name, kind in cursor.fetchall():
            if kind == "VIEW":
                found[name] = ("view", None)
                continue
            cursor.execute(f"SELECT COUNT(*) FROM {quote_name(name)}")
            found[name] = ("table", int(cursor.fetchone()[0]))
    return found


def live_tables(database: DatabaseSettings) -> list[str]:
    """Return the names of the base tables of *database* carrying its prefix (``subname``).

    Raise DatabaseError when the server cannot be queried.
    """
    import pymysql

    prefix = database.subname
    with connect(database) as connection, connection.cursor() as cursor:
        try:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " AND TABLE_TYPE = 'BASE TABLE' AND LEFT(TABLE_NAME, CHAR_LENGTH(%s)) = %s"
                " ORDER BY TABLE_NAME", (database.name, prefix, prefix))
            return [row[0] for row in cursor.fetchall()]
        except pymysql.MySQLError as error:
            raise DatabaseError(f"cannot list the tables of {database.name}: {error.args[-1]}") from None
