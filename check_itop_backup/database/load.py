"""Load an archive's dump into a database through the mysql client, and swap it into the target.

``load_dump`` streams ``itop-dump.sql`` from the archive into the client (never to disk),
the password through a pipe (process.py), as iTop's restore and ``gunzip -c | mysql`` run
it (with ``autocommit`` off the 467 MB benchmark loaded 30 % slower), with three walls
against a hostile dump: each line is checked before the client gets it (sqlguard.py:
client commands, other databases), the client runs in binary mode (no client commands),
sandbox mode where it has it and without ``LOAD DATA LOCAL``, and it logs in as a
temporary account that can reach only the database loaded into (dropped afterwards). On
failure the client's error names the statement's line and the statement is quoted.

``swap_into`` moves the loaded tables into the target with one atomic ``RENAME TABLE`` (the
target's tables of the same names are renamed aside in the same statement, then dropped),
and re-creates the dump's views and triggers in the target (MariaDB and MySQL cannot move
them between databases).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from check_itop_backup import deadline
from check_itop_backup.archive.inspect import ArchiveError, Discard, Sink, open_source, walk_tar_gz
from check_itop_backup.archive.layout import DUMP_MEMBER
from check_itop_backup.archive.sqlguard import DumpGuard, HostileDumpError, strip_definer
from check_itop_backup.archive.tar import REGULAR_TYPES, root_name, unsafe_reason
from check_itop_backup.database.process import Child, connection_options, find_program, help_text
from check_itop_backup.database.recovery import (
    JOURNAL_TABLE,
    create_all,
    create_triggers,
    old_table_name,
    token_of,
)
from check_itop_backup.database.server import DatabaseError, connect, objects_in, quote_name
from check_itop_backup.itop.instance import DatabaseSettings

CLIENT_PROGRAMS = ("mysql", "mariadb")
LOAD_ACCOUNT_PREFIX = "cib_load_"
_ERROR_LINE = re.compile(r"ERROR (\d+) \(([^)]*)\) at line (\d+)(?: in file: '[^']*')?: (.*)")
_RECENT_PIECES = 4  # decompressed pieces kept to quote a failed statement
_QUOTE_LIMIT = 160


@dataclass(frozen=True)
class LoadResult:
    """A dump loaded into *database*: its objects and how long it took."""

    database: str
    seconds: float
    dump_size: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SwapResult:
    """What the swap changed in the target: *replaced* objects, and *kept* (not in the dump)."""

    tables: tuple[str, ...]
    views: tuple[str, ...]
    triggers: tuple[str, ...]
    replaced: tuple[str, ...]
    kept: tuple[str, ...]


def find_client_program(bindir: str = "") -> str:
    """Return the full path of mysql (or mariadb) in *bindir*, else on PATH; raise DatabaseError."""
    return find_program(CLIENT_PROGRAMS, bindir)


def client_command(program: str, defaults_option: str, settings: DatabaseSettings, version: str,
                   database: str) -> tuple[str, ...]:
    """Return the client argv loading into *database*; *defaults_option* (the password pipe) first.

    ``--binary-mode`` turns off the client's own commands (``\\!``, ``source``…), ``--sandbox``
    (MariaDB 10.5.25, 10.11.8 and later) also those reading or writing files, and
    ``--local-infile=0`` keeps ``LOAD DATA LOCAL`` from reading the host's files.
    """
    return ((program, defaults_option, "--default-character-set=utf8mb4", "--binary-mode", "--local-infile=0")
            + (("--sandbox",) if _has_sandbox(program) else ())
            + connection_options(settings, version)
            + (f"--database={database}",))


@functools.cache
def _has_sandbox(program: str) -> bool:
    return b"--sandbox" in help_text(program)


@contextlib.contextmanager
def load_account(settings: DatabaseSettings, database: str,
                 token: str) -> Iterator[tuple[DatabaseSettings, str]]:
    """Yield the settings of a temporary account (named after the run's *token*) that can
    reach only *database*, and a warning ("" when the account exists); it is dropped
    afterwards. Without the right to create accounts, yield *settings* themselves and say so
    in the warning."""
    import pymysql

    name, password = f"{LOAD_ACCOUNT_PREFIX}{token}", secrets.token_urlsafe(24)
    try:
        with connect(settings) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT SUBSTRING_INDEX(USER(), '@', -1)")  # where the client comes from
            host = cursor.fetchone()[0]
            try:
                cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, host, password))
                cursor.execute(f"GRANT ALL PRIVILEGES ON {quote_name(database)}.* TO %s@%s", (name, host))
            except pymysql.MySQLError as error:
                with contextlib.suppress(pymysql.MySQLError):  # (no right to drop it either)
                    cursor.execute("DROP USER IF EXISTS %s@%s", (name, host))
                refused = error.args[-1]
            else:
                refused = ""
    except (DatabaseError, pymysql.MySQLError) as error:
        raise DatabaseError(f"cannot prepare the load: {error.args[-1]}") from None
    if refused:
        yield settings, (f"the dump was loaded as {settings.user}: a temporary account restricted to "
                         f"{database} could not be created ({refused})")
        return
    try:
        yield settings._replace(user=name, password=password), ""
    finally:
        with deadline.shielded():
            _drop_account(settings, name, host)


def _drop_account(settings: DatabaseSettings, name: str, host: str) -> None:
    with contextlib.suppress(Exception), connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@%s", (name, host))


class _ClientFeeder:
    """The dump's sink: checks each line (sqlguard.py), then writes it to the client's stdin;
    keeps the last pieces, with the guard's line count, to quote a failed statement."""

    def __init__(self, fd: int, also: Sink | None) -> None:
        self.fd = fd
        self.also = also
        self.size = 0
        self.recent: collections.deque[tuple[int, bytes, int, int]] = collections.deque(maxlen=_RECENT_PIECES)
        self.broken = False
        self.guard = DumpGuard(self._send)

    def write(self, data: bytes, start: int, end: int) -> None:
        if self.also is not None:
            self.also.write(data, start, end)
        self.recent.append((self.guard.line, data, start, end))  # lines before this piece
        self.size += end - start
        self.guard.write(data, start, end)

    def _send(self, data: bytes, start: int, end: int) -> None:
        view = memoryview(data)[start:end]
        while view and not self.broken:
            try:
                view = view[os.write(self.fd, view):]
            except BrokenPipeError:
                self.broken = True  # the client stopped: its exit status says why

    def statement_at(self, line: int) -> str:
        """Return the start of the statement beginning on (1-based) *line*, when still in memory."""
        for first, data, start, end in self.recent:
            if first < line <= first + data.count(b"\n", start, end) + 1:
                position = start
                for _ in range(line - 1 - first):
                    position = data.index(b"\n", position, end) + 1
                stop = data.find(b"\n", position, min(end, position + _QUOTE_LIMIT))
                text = data[position:stop if stop >= 0 else min(end, position + _QUOTE_LIMIT)]
                return text.decode("utf-8", "replace")
        return ""


class _Receiver:
    """Feeds ``walk_tar_gz``: the dump to the client, every other member to *other*."""

    def __init__(self, feeder: _ClientFeeder, other: Any = None) -> None:
        self.feeder = feeder
        self.other = other
        self.warnings: list[str] = []
        self.multi_member_gzip = False

    def open_member(self, name: str, size: int, kind: bytes = b"0", linkname: str = "") -> Sink:
        reason = unsafe_reason(name, kind, linkname)
        if reason:
            raise ArchiveError(reason)
        if root_name(name) == DUMP_MEMBER and kind in REGULAR_TYPES:
            return self.feeder
        if self.other is not None:
            return self.other.open_member(root_name(name), kind)
        return Discard()


def load_dump(archive: str, settings: DatabaseSettings, database: str, *, token: str, program: str,
              version: str, also: Sink | None = None, files: Any = None) -> LoadResult:
    """Stream the archive's dump into *database* through the client *program*, as the load
    account of run *token*.

    *also* gets the dump's bytes too (a row counter); *files* (``open_member(name, kind)``)
    gets the other members. Raise DatabaseError naming the failed statement; the client is
    killed when anything (a timeout, SIGTERM) interrupts the load.
    """
    with load_account(settings, database, token) as (account, warning):
        loaded = _load(archive, account, database, program=program, version=version, also=also, files=files)
    return dataclasses.replace(loaded, warnings=(warning,) if warning else ())


def _load(archive: str, settings: DatabaseSettings, database: str, *, program: str, version: str,
          also: Sink | None, files: Any) -> LoadResult:
    started = time.monotonic()
    client = Child(lambda option: client_command(program, option, settings, version, database),
                   settings.password, feed=True)
    feeder = _ClientFeeder(client.pipe.fileno(), also)
    try:
        with deadline.current.stage(f"loading {os.path.basename(str(archive))} into {database}"):
            with open_source(archive) as handle:
                walk_tar_gz(handle, _Receiver(feeder, files))
            feeder.guard.finish()
            status = client.wait()
    except ArchiveError as error:
        client.kill()
        raise DatabaseError(f"the archive changed since it was verified: {error}") from None
    except HostileDumpError as error:
        client.kill()
        raise DatabaseError(f"{DUMP_MEMBER} holds what a restore must not run, {error}: refused, "
                            "the client never received it") from None
    except BaseException:
        client.kill()
        raise
    if status != 0:
        raise DatabaseError(_failure(client.stderr_lines, status, feeder))
    return LoadResult(database, time.monotonic() - started, feeder.size)


def _failure(stderr: list[str], status: int, feeder: _ClientFeeder) -> str:
    """The one-line reason of a failed load: the error, its line and the statement."""
    for line in stderr:
        match = _ERROR_LINE.search(line)
        if match:
            number = int(match.group(3))
            statement = feeder.statement_at(number)
            quoted = f": {statement}" if statement else ""
            return (f"statement at line {number} of {DUMP_MEMBER} failed with error {match.group(1)} "
                    f"({match.group(4)}){quoted}")
    lines = [line for line in stderr if line.strip()]
    return f"the client exited with status {status}: {lines[-1] if lines else 'no message'}"


def swap_into(settings: DatabaseSettings, scratch: str) -> SwapResult:
    """Move every table of *scratch* into the target (``settings.name``) in one atomic RENAME,
    replacing same-named objects, then re-create *scratch*'s views and triggers there.

    Raise DatabaseError (target unchanged) when the dump holds routines or events, or the
    rename fails. SIGTERM and the deadline's alarm wait until the swap is done.
    """
    import pymysql

    target = settings.name
    with deadline.shielded(), connect(settings) as connection, connection.cursor() as cursor:
        try:
            objects = objects_in(cursor, scratch)
            if objects["routines"]:
                raise DatabaseError("the dump holds stored routines or events "
                                    f"({', '.join(objects['routines'])}), which restore does not move: "
                                    f"{target} is unchanged")
            cursor.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                           "WHERE TABLE_SCHEMA = %s", (target,))
            existing = dict(cursor.fetchall())
            defined = _definitions(cursor, scratch, "VIEW", objects["views"])
            views = {name: ("", statement.replace(f"{quote_name(scratch)}.", f"{quote_name(target)}."))
                     for name, (_, statement) in defined.items()}
            triggers = _definitions(cursor, scratch, "TRIGGER", objects["triggers"])
            _journal(cursor, scratch, target, views, triggers)
            for name in objects["triggers"]:
                cursor.execute(f"DROP TRIGGER {quote_name(scratch)}.{quote_name(name)}")
            for name in objects["views"]:
                cursor.execute(f"DROP VIEW {quote_name(scratch)}.{quote_name(name)}")
            incoming = objects["tables"] + objects["views"]
            aside = {name: old_table_name(token_of(scratch), index)
                     for index, name in enumerate(incoming) if name in existing}
            pairs = [f"{quote_name(target)}.{quote_name(name)} TO {quote_name(target)}.{quote_name(old)}"
                     for name, old in aside.items()]
            pairs += [f"{quote_name(scratch)}.{quote_name(name)} TO {quote_name(target)}.{quote_name(name)}"
                      for name in objects["tables"]]
            if pairs:
                cursor.execute("RENAME TABLE " + ", ".join(pairs))
            for name, old in aside.items():
                kind = "VIEW" if existing[name] == "VIEW" else "TABLE"
                cursor.execute(f"DROP {kind} IF EXISTS {quote_name(target)}.{quote_name(old)}")
            connection.select_db(target)
            create_all(cursor, [statement for _, statement in views.values()])
            create_triggers(cursor, list(triggers.values()))
        except pymysql.MySQLError as error:
            raise DatabaseError(f"swapping the restored tables into {target} failed: "
                                f"{error.args[-1]}") from None
    kept = tuple(sorted(name for name in existing if name not in set(incoming)))
    return SwapResult(tuple(objects["tables"]), tuple(objects["views"]), tuple(objects["triggers"]),
                      tuple(sorted(aside)), kept)


def _journal(cursor, scratch: str, target: str, views: dict[str, tuple[str, str]],
             triggers: dict[str, tuple[str, str]]) -> None:
    """Write what the swap re-creates after its rename into the scratch database: a recovery
    after kill -9 finishes the swap from it (recovery.py)."""
    table = f"{quote_name(scratch)}.{JOURNAL_TABLE}"
    cursor.execute(f"CREATE TABLE {table} (target VARCHAR(64) NOT NULL, kind VARCHAR(8) NOT NULL, "
                   "name VARCHAR(64) NOT NULL, sql_mode TEXT NOT NULL, statement LONGTEXT NOT NULL)")
    rows = [(target, "TARGET", "", "", "")]
    rows += [(target, "VIEW", name, "", statement) for name, (_, statement) in views.items()]
    rows += [(target, "TRIGGER", name, mode, statement) for name, (mode, statement) in triggers.items()]
    cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)", rows)


def _definitions(cursor, schema: str, kind: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """Return {name: (sql_mode, CREATE statement)} of views or triggers, without their DEFINER:
    the load's temporary account defined them, and it is dropped; they are re-created as the
    restoring account."""
    found = {}
    for name in names:
        cursor.execute(f"SHOW CREATE {kind} {quote_name(schema)}.{quote_name(name)}")
        row = cursor.fetchone()
        found[name] = ("", strip_definer(row[1])) if kind == "VIEW" else (row[1], strip_definer(row[2]))
    return found
