"""Restore an archive's database: verified first, loaded into a scratch database, swapped in.

``restore_database(archive, settings, force=...)`` (``itop-backup restore``):

1. verifies the archive at the ``dump`` level (verify.py) and refuses a bad one before any
   statement runs;
2. refuses a target database that has tables, unless *force*;
3. streams ``itop-dump.sql`` from the archive into the mysql/mariadb client (never to disk),
   connected to a uniquely named scratch database, the password through a pipe
   (credentials.py), as iTop's restore and ``gunzip -c | mysql`` run it (with ``autocommit``
   off the 467 MB benchmark loaded 30 % slower), with three walls against a hostile dump:
   each line is checked before the client gets it (sqlguard.py: client commands, other
   databases), the client runs in binary mode (no client commands), sandbox mode where it
   has it and without ``LOAD DATA LOCAL``, and it logs in as a temporary account that can
   reach only the scratch database (dropped afterwards); on failure the client's error
   names the statement's line and the statement is quoted;
4. swaps the loaded tables into the target with one atomic ``RENAME TABLE`` (the target's
   tables of the same names are renamed aside in the same statement, then dropped), and
   re-creates the dump's views and triggers in the target (MariaDB and MySQL cannot move
   them between databases);
5. drops the scratch database, whatever happened (failure, timeout, SIGTERM).

What is not kept: tables of the target that are not in the dump stay as they are (iTop's
restore does the same; they are reported). Between the swap and the re-creation of views
and triggers (milliseconds) those are missing. A dump holding stored routines or events
is refused at the swap, target untouched. ``scratch_database`` and ``load_dump`` are also
the test restore's building blocks (testrestore.py).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from check_itop_backup import deadline
from check_itop_backup.archive.inspect import ArchiveError, walk_tar_gz
from check_itop_backup.archive.layout import DUMP_MEMBER, config_path
from check_itop_backup.archive.sqlguard import DumpGuard, HostileDumpError, strip_definer
from check_itop_backup.archive.tar import REGULAR_TYPES, root_name, unsafe_reason
from check_itop_backup.database.dump import (
    DumpError,
    ServerFacts,
    connect,
    port_options,
    quote_name,
    tls_options,
)
from check_itop_backup.database.recovery import (
    JOURNAL_TABLE,
    FilesJournal,
    RecoveryError,
    create_all,
    create_triggers,
    old_table_name,
    recover,
    run_lock,
    token_of,
)
from check_itop_backup.itop.credentials import PASSWORD_ENV, defaults_file_pipe
from check_itop_backup.itop.instance import DatabaseSettings

CLIENT_PROGRAMS = ("mysql", "mariadb")
SCRATCH_PREFIX = "cib_restore_"
LOAD_ACCOUNT_PREFIX = "cib_load_"
_ERROR_LINE = re.compile(r"ERROR (\d+) \(([^)]*)\) at line (\d+)(?: in file: '[^']*')?: (.*)")
_RECENT_PIECES = 4  # decompressed pieces kept to quote a failed statement
_QUOTE_LIMIT = 160
_PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size
_BLOCKED = {signal.SIGTERM, signal.SIGALRM, signal.SIGINT}
_ACCESS_DENIED = (1044, 1227)  # ER_DBACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR


class RestoreError(Exception):
    """The restore failed; the message is one line for people."""


class ScratchRefusedError(RestoreError):
    """The account may not create the scratch database; the message names the GRANT it needs."""


class Sink(Protocol):
    """Where a member's data goes: ``write(data, start, end)`` takes ``data[start:end]``."""

    def write(self, data: bytes, start: int, end: int) -> None: ...


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
    """Return the full path of mysql (or mariadb) in *bindir*, else on PATH; raise RestoreError."""
    for name in CLIENT_PROGRAMS:
        found = shutil.which(name, path=bindir or None)
        if found:
            return os.path.abspath(found)
    raise RestoreError(f"neither mysql nor mariadb found {'in ' + bindir if bindir else 'on PATH'}")


def client_command(program: str, defaults_option: str, settings: DatabaseSettings, version: str,
                   database: str) -> tuple[str, ...]:
    """Return the client argv loading into *database*; *defaults_option* (the password pipe) first.

    ``--binary-mode`` turns off the client's own commands (``\\!``, ``source``…), ``--sandbox``
    (MariaDB 10.5.25, 10.11.8 and later) also those reading or writing files, and
    ``--local-infile=0`` keeps ``LOAD DATA LOCAL`` from reading the host's files.
    """
    facts = ServerFacts(version, "utf8mb4", (), 0)
    return ((program, defaults_option, "--default-character-set=utf8mb4", "--binary-mode", "--local-infile=0")
            + (("--sandbox",) if _has_sandbox(program) else ())
            + (f"--host={settings.host}",)
            + port_options(settings.host, settings.port)
            + (f"--user={settings.user}",)
            + tls_options(settings, facts)
            + (f"--database={database}",))


@functools.cache
def _has_sandbox(program: str) -> bool:
    try:
        shown = subprocess.run((program, "--no-defaults", "--help"), capture_output=True, timeout=30,
                               check=False, env=_client_environment()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--sandbox" in shown


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
    except (DumpError, pymysql.MySQLError) as error:
        raise RestoreError(f"cannot prepare the load: {error.args[-1]}") from None
    if refused:
        yield settings, (f"the dump was loaded as {settings.user}: a temporary account restricted to "
                         f"{database} could not be created ({refused})")
        return
    try:
        yield settings._replace(user=name, password=password), ""
    finally:
        with _signals_held():
            _drop_account(settings, name, host)


def _drop_account(settings: DatabaseSettings, name: str, host: str) -> None:
    with contextlib.suppress(Exception), connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@%s", (name, host))


def server_version(settings: DatabaseSettings) -> str:
    """Return the server's version string; raise RestoreError when it cannot be reached."""
    try:
        with connect(settings) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return cursor.fetchone()[0]
    except DumpError as error:
        raise RestoreError(str(error)) from None


def new_token() -> str:
    """A run's token: it names the run's scratch database, load account and replaced tables."""
    return uuid.uuid4().hex[:16]


@contextlib.contextmanager
def scratch_database(settings: DatabaseSettings, prefix: str = SCRATCH_PREFIX,
                     token: str = "") -> Iterator[str]:
    """Create a uniquely named, empty utf8mb4 database and yield its name; drop it afterwards,
    whatever ends the block (SIGTERM and the deadline's alarm are held back while dropping).
    The run's lock (recovery.py) is held meanwhile: it tells this run from a killed one."""
    token = token or new_token()
    name = f"{prefix}{token}"
    with _run_lock(settings, token):
        _create_scratch(settings, name, prefix)
        try:
            yield name
        finally:
            with _signals_held():
                drop_database(settings, name)


@contextlib.contextmanager
def _run_lock(settings: DatabaseSettings, token: str) -> Iterator[None]:
    """Hold the run's lock (recovery.py); a server that cannot be reached is a RestoreError."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(run_lock(settings, token))
        except DumpError as error:
            raise RestoreError(str(error)) from None
        yield


def _create_scratch(settings: DatabaseSettings, name: str, prefix: str) -> None:
    """Create the scratch database; raise ScratchRefusedError, naming the GRANT, when the
    account has no right to (iTop's usual account has ALL on the iTop database only)."""
    import pymysql

    try:
        with connect(settings) as connection, connection.cursor() as cursor:
            try:
                cursor.execute(f"CREATE DATABASE {quote_name(name)} CHARACTER SET utf8mb4 "
                               "COLLATE utf8mb4_unicode_ci")
            except pymysql.MySQLError as error:
                if error.args[0] not in _ACCESS_DENIED:
                    raise RestoreError(f"CREATE DATABASE {name} failed: {error.args[-1]}") from None
                cursor.execute("SELECT CURRENT_USER()")
                user, _, host = cursor.fetchone()[0].rpartition("@")
                pattern = prefix.replace("_", "\\_") + "%"
                raise ScratchRefusedError(
                    f"{settings.user} may not create the scratch database {name} ({error.args[-1]}): "
                    f"GRANT ALL ON `{pattern}`.* TO '{user}'@'{host}'") from None
    except DumpError as error:
        raise RestoreError(str(error)) from None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def drop_database(settings: DatabaseSettings, name: str) -> None:
    """Drop database *name*, first killing the sessions still using it (a killed client's)."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST "
                       "WHERE DB = %s AND ID != CONNECTION_ID()", (name,))
        for (session,) in cursor.fetchall():
            with contextlib.suppress(Exception):
                cursor.execute(f"KILL {int(session)}")
        cursor.execute(f"DROP DATABASE IF EXISTS {quote_name(name)}")


def _execute(settings: DatabaseSettings, *statements: str, database: str | None = None) -> None:
    import pymysql

    try:
        with connect(settings, database) as connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    except DumpError as error:
        raise RestoreError(str(error)) from None
    except pymysql.MySQLError as error:
        raise RestoreError(f"{statements[0].split(' (')[0]} failed: {error.args[-1]}") from None


def target_tables(settings: DatabaseSettings) -> list[str] | None:
    """Return the tables and views of the target database, or None when it does not exist."""
    with connect(settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (settings.name,))
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                       "ORDER BY TABLE_NAME", (settings.name,))
        return [row[0] for row in cursor.fetchall()]


class _Discard:
    def write(self, data: bytes, start: int, end: int) -> None:
        pass


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
        return _Discard()


def load_dump(archive: str, settings: DatabaseSettings, database: str, *, token: str, program: str,
              version: str, also: Sink | None = None, files: Any = None) -> LoadResult:
    """Stream the archive's dump into *database* through the client *program*, as the load
    account of run *token*.

    *also* gets the dump's bytes too (a row counter); *files* (``open_member(name, kind)``)
    gets the other members. Raise RestoreError naming the failed statement; the client is
    killed when anything (a timeout, SIGTERM) interrupts the load.
    """
    with load_account(settings, database, token) as (account, warning):
        loaded = _load(archive, account, database, program=program, version=version, also=also, files=files)
    return dataclasses.replace(loaded, warnings=(warning,) if warning else ())


def _load(archive: str, settings: DatabaseSettings, database: str, *, program: str, version: str,
          also: Sink | None, files: Any) -> LoadResult:
    started = time.monotonic()
    with defaults_file_pipe(settings.password) as (fd, option):
        process = subprocess.Popen(
            client_command(program, option, settings, version, database), stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(fd,), env=_client_environment(),
            start_new_session=True)
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()), daemon=True)
    reader.start()
    with contextlib.suppress(OSError):  # room for the client to go on while a line is checked
        fcntl.fcntl(process.stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    feeder = _ClientFeeder(process.stdin.fileno(), also)
    try:
        with deadline.current.stage(f"loading {os.path.basename(archive)} into {database}"):
            with open(archive, "rb", buffering=0) as handle:
                walk_tar_gz(handle, _Receiver(feeder, files))
            feeder.guard.finish()
            process.stdin.close()
            status = process.wait()
            reader.join()
    except ArchiveError as error:
        _kill(process)
        raise RestoreError(f"the archive changed since it was verified: {error}") from None
    except HostileDumpError as error:
        _kill(process)
        raise RestoreError(f"{DUMP_MEMBER} holds what a restore must not run, {error}: refused, "
                           "the client never received it") from None
    except BaseException:
        _kill(process)
        raise
    if status != 0:
        raise RestoreError(_failure(b"".join(stderr).decode("utf-8", "replace"), status, feeder))
    return LoadResult(database, time.monotonic() - started, feeder.size)


def _client_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in ("MYSQL_PWD", PASSWORD_ENV)}


def _kill(process: subprocess.Popen) -> None:
    with _signals_held():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        with contextlib.suppress(OSError):
            process.stdin.close()


def _failure(stderr: str, status: int, feeder: _ClientFeeder) -> str:
    """The one-line reason of a failed load: the error, its line and the statement."""
    for line in stderr.splitlines():
        match = _ERROR_LINE.search(line)
        if match:
            number = int(match.group(3))
            statement = feeder.statement_at(number)
            quoted = f": {statement}" if statement else ""
            return (f"statement at line {number} of {DUMP_MEMBER} failed with error {match.group(1)} "
                    f"({match.group(4)}){quoted}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return f"the client exited with status {status}: {lines[-1] if lines else 'no message'}"


def swap_into(settings: DatabaseSettings, scratch: str) -> SwapResult:
    """Move every table of *scratch* into the target (``settings.name``) in one atomic RENAME,
    replacing same-named objects, then re-create *scratch*'s views and triggers there.

    Raise RestoreError (target unchanged) when the dump holds routines or events, or the
    rename fails.
    """
    import pymysql

    target = settings.name
    with connect(settings) as connection, connection.cursor() as cursor:
        try:
            objects = _objects(cursor, scratch)
            if objects["routines"]:
                raise RestoreError("the dump holds stored routines or events "
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
            raise RestoreError(f"swapping the restored tables into {target} failed: "
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


def _objects(cursor, schema: str) -> dict[str, list[str]]:
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


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: the load, the swap, the files written, warnings for people."""

    archive: str
    database: str
    load: LoadResult
    swap: SwapResult
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    path: str = ""  # one line: through a scratch database, or into the target itself


def restore_archive(archive: str, settings: DatabaseSettings, *, force: bool = False, itop_root: str = "",
                    environment: str = "production", bindir: str = "", keep_dir: str = "") -> RestoreResult:
    """Restore *archive* into ``settings.name`` (and its files into *itop_root* when given).

    Through a scratch database swapped in, or, when the account may not create one, into the
    target itself (inplace.py: its previous content saved first into *keep_dir*, default the
    archive's directory, and put back when the load fails).
    Raise RestoreError (target database and files unchanged) when the archive does not verify,
    the target has tables and not *force*, or the load fails; OSError when the archive cannot
    be read. ``StageTimeoutError`` (timeout, SIGTERM) passes through; the scratch database,
    the staged files and the maintenance file are removed on every way out.
    """
    from check_itop_backup.archive.inspect import verify_archive
    from check_itop_backup.backup.files import FilesError, StagedFiles, maintenance_mode

    report = verify_archive(archive, "dump")
    if report.state == "critical":
        raise RestoreError(f"{archive} does not verify, nothing was touched: {report.reason}")
    if report.container != "tar.gz":
        raise RestoreError(f"{archive} is a {report.container} archive: only .tar.gz archives are restored")
    program = find_client_program(bindir)
    version = server_version(settings)
    cleaned, not_cleaned = recover(settings, itop_root)
    existing = target_tables(settings)
    if existing and not force:
        shown = ", ".join(existing[:5]) + (", …" if len(existing) > 5 else "")
        raise RestoreError(f"database {settings.name} has {len(existing)} tables ({shown}): "
                           "give --force to replace them")
    token = new_token()
    try:
        with contextlib.ExitStack() as stack:
            files = journal = None
            if itop_root:
                journal = stack.enter_context(FilesJournal(itop_root, token, environment))
                stack.enter_context(maintenance_mode(itop_root, journal))
                files = stack.enter_context(StagedFiles(itop_root, environment, staging=journal.staging))
            try:
                loaded, swapped = _through_scratch(archive, settings, existing, token=token, program=program,
                                                   version=version, files=files)
                path = (f"path: loaded into the scratch database {SCRATCH_PREFIX}{token}, then swapped "
                        f"into {settings.name} atomically")
            except ScratchRefusedError:
                from check_itop_backup.database.inplace import load_in_place

                config = os.path.join(itop_root, config_path(environment)) if itop_root else ""
                stack.enter_context(_run_lock(settings, token))
                done = load_in_place(archive, settings, existing, report.tables, token=token, program=program,
                                     version=version, files=files,
                                     keep_dir=keep_dir or os.path.dirname(os.path.abspath(archive)),
                                     config_path=config if os.path.isfile(config) else "")
                loaded, swapped = done.load, done.swap
                saved = f"; its previous content is in {done.saved}" if done.saved else ""
                path = (f"path: loaded into {settings.name} itself, as iTop's restore does (this account "
                        f"may not create a scratch database){saved}")
            if files and journal:
                journal.note(swapped=True)
                _place(files, journal, settings.name, swapped)
            placed = tuple(files.written) if files else ()
            skipped = tuple(files.skipped) if files else ()
    except (FilesError, RecoveryError) as error:
        raise RestoreError(f"{error}: nothing was written, {settings.name} and {itop_root} are unchanged") \
            from None
    warnings = cleaned + not_cleaned + list(report.warnings) + list(loaded.warnings)
    if swapped.kept:
        warnings.append(f"{len(swapped.kept)} table(s) of {settings.name} not in the dump were left "
                        f"as they are: {', '.join(swapped.kept)}")
    warnings += [f"link member {name} was not restored" for name in skipped]
    return RestoreResult(archive, settings.name, loaded, swapped, placed, tuple(warnings), path)


def _through_scratch(archive: str, settings: DatabaseSettings, existing: list[str] | None, *, token: str,
                     program: str, version: str, files: Any) -> tuple[LoadResult, SwapResult]:
    """Load into a scratch database, then swap it into the target; ScratchRefusedError when the
    account may not create one (nothing touched)."""
    with scratch_database(settings, token=token) as scratch:
        loaded = load_dump(archive, settings, scratch, token=token, program=program, version=version,
                           files=files)
        if files:
            files.check_placement()
        with deadline.current.stage(f"swapping the restored tables into {settings.name}"):
            if existing is None:  # created only now: a failed load leaves no empty database
                _execute(settings, f"CREATE DATABASE IF NOT EXISTS {quote_name(settings.name)} "
                                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            return loaded, swap_into(settings, scratch)


def _place(files, journal: FilesJournal, target: str, swapped: SwapResult) -> None:
    """Place the staged files after the swap; a failure says what was replaced and what was
    not, and leaves the rest staged with its journal, for the next restore to place."""
    from check_itop_backup.backup.files import FilesError

    try:
        files.place()
    except (FilesError, OSError) as error:
        files.keep = journal.keep = True
        reason = f"{error.strerror}: {error.filename}" if isinstance(error, OSError) else str(error)
        placed = ", ".join(files.written) or "none"
        raise RestoreError(f"{target} was replaced ({len(swapped.tables)} tables) but placing the files "
                           f"failed ({reason}); placed: {placed}; the rest is still staged and a later "
                           "restore into the same root places it") from None
