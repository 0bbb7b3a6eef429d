"""The history store: one SQLite file shared by the probe, the runner and the ticketing.

One row per distinct archive (identity: path, size, mtime, inode), verification results
per archive and level, the runner's runs, the tickets of each backup series, and each change
of a series' verdict with its reason (what ``itop-backup history`` shows).
A *series* is the archive name pattern (placeholders filled): it tells apart the backup
sets of many iTop instances sharing one file.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a file from
version n to n + 1. WAL and a busy timeout let many probes share the file; every write
goes through ``transaction()`` so that a timeout mid-write leaves the file consistent.
The busy wait never outlasts the run's deadline (deadline.py): a history locked by
another writer ends the run with its timeout, not 20 s later.

A file is checked before anything is written to it: one of a newer schema, or that is
not ours (tables but no version, or our version without our tables), is refused
untouched. A new history is created group-writable (0660, for the runner and the monitoring
user). A history this process cannot write is opened read-only and immutable, so that
reading it leaves no ``-wal``/``-shm`` files behind. Every SQLite error is a
``HistoryError`` naming the file.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import SimpleNamespace

from check_itop_backup import deadline

DEFAULT_PATH = "/var/lib/check_itop_backup/history.sqlite"
ENV_VAR = "CHECK_ITOP_BACKUP_HISTORY"
BUSY_TIMEOUT_S = 20.0
_VERIFICATIONS = ("SELECT a.path, v.level, v.state, v.message, v.details, v.verified_at FROM verifications v"
                  " JOIN archives a ON a.id = v.archive_id WHERE ")
RUN_FIELDS = ("id", "series", "started", "finished", "archive_path", "size", "status", "message")
_BUSY_MARGIN_S = 0.2  # a wait cut by the deadline ends just after it: the timeout is then certain

MIGRATIONS = (
    """
    CREATE TABLE archives (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        inode INTEGER NOT NULL DEFAULT 0,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        verdict TEXT,
        UNIQUE (path, size, mtime, inode)
    );
    CREATE INDEX archives_by_series ON archives (series, mtime);
    CREATE TABLE verifications (
        archive_id INTEGER NOT NULL REFERENCES archives (id) ON DELETE CASCADE,
        level TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT,
        verified_at REAL NOT NULL,
        PRIMARY KEY (archive_id, level)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        started REAL NOT NULL,
        finished REAL,
        archive_path TEXT,
        size INTEGER,
        status TEXT NOT NULL,
        message TEXT
    );
    CREATE INDEX runs_by_series ON runs (series, started);
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        ref TEXT,
        itop_key TEXT,
        title TEXT,
        org TEXT,
        opened_at REAL NOT NULL,
        last_update_at REAL,
        closed_at REAL,
        state TEXT NOT NULL
    );
    CREATE INDEX tickets_by_series ON tickets (series, closed_at);
    """,
    # One row per change of a series' verdict (state, causes or judged archive), not per probe.
    """
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        archive_id INTEGER REFERENCES archives (id) ON DELETE CASCADE,
        state TEXT NOT NULL,
        causes TEXT NOT NULL,
        reason TEXT NOT NULL,
        changed_at REAL NOT NULL
    );
    CREATE INDEX verdicts_by_series ON verdicts (series, changed_at);
    """,
    # Copies in object storage (offsite/): one row per archive and destination, pending until uploaded.
    """
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY,
        series TEXT NOT NULL,
        archive_path TEXT NOT NULL,
        destination TEXT NOT NULL,
        state TEXT NOT NULL,
        requested REAL NOT NULL,
        finished REAL,
        object_key TEXT,
        message TEXT,
        upload_id TEXT,
        checksum TEXT,
        identity TEXT,
        UNIQUE (archive_path, destination)
    );
    CREATE INDEX uploads_by_series ON uploads (series, destination, state);
    """,
)

# What ``listing(table)`` reads: every row, with the archive's path where a row points to one.
_LISTINGS = {
    "archives": "SELECT * FROM archives ORDER BY series, mtime, id",
    "runs": "SELECT * FROM runs ORDER BY series, started, id",
    "verifications": "SELECT a.series, a.path, v.level, v.state, v.message, v.verified_at"
                     " FROM verifications v JOIN archives a ON a.id = v.archive_id"
                     " ORDER BY a.series, v.verified_at",
    "verdicts": "SELECT v.series, a.path, v.state, v.causes, v.reason, v.changed_at FROM verdicts v"
                " LEFT JOIN archives a ON a.id = v.archive_id ORDER BY v.series, v.changed_at, v.id",
    "tickets": "SELECT * FROM tickets ORDER BY series, opened_at, id",
    "uploads": "SELECT * FROM uploads ORDER BY series, requested, id",
}


class HistoryError(Exception):
    """The history file cannot be used (corrupt, unwritable, locked too long)."""


# Named tuples, not dataclasses: the probe imports this module and its start-up time counts.
class ArchiveRecord(namedtuple("ArchiveRecord", "id series path size mtime inode first_seen last_seen "
                                                 "verdict")):
    """One archive as the history knows it (a row of ``archives``)."""

    __slots__ = ()


class TicketRecord(namedtuple("TicketRecord", "id series ref itop_key title org opened_at "
                                               "last_update_at closed_at state")):
    """The iTop Incident of one failure episode of a series (open while ``closed_at`` is None)."""

    __slots__ = ()


class History:
    """An open history file. Use ``History.open(path)``; close it with ``close()``."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.connection = connection
        self.path = path

    @classmethod
    def open(cls, path: str) -> History:
        """Open (creating it and its directory if needed) and migrate the history at *path*;
        a history this process cannot write is opened read-only (its writes fail)."""
        try:
            parent = os.path.dirname(os.path.abspath(path))
            if os.path.exists(parent) and not os.path.isdir(parent):
                raise HistoryError(f"cannot open history {path}: {parent} is not a directory")
            writable = not os.path.exists(path) or (os.access(path, os.W_OK) and os.access(parent, os.W_OK))
            if writable:
                os.makedirs(parent, exist_ok=True)
                _create_shared(path)
                connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            else:
                from urllib.parse import quote  # rare: only for a history that cannot be written

                uri = f"file:{quote(os.fsencode(os.path.abspath(path)))}?mode=ro&immutable=1"
                connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"cannot open history {path}: {_reason(error)}") from None
        history = cls(connection, path)
        try:
            history._bound_busy_wait()
            history._check_schema()  # before anything is written: a refused file stays untouched
            if writable:
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("PRAGMA synchronous = NORMAL")  # WAL: durable, no fsync per commit
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode = WAL")
                history._migrate()
        except sqlite3.Error as error:
            connection.close()
            raise history._failure(error, "use") from None
        except HistoryError:
            connection.close()
            raise
        return history

    def close(self) -> None:
        self.connection.close()

    def _check_schema(self) -> None:
        """Refuse a file of a newer schema, or one that is not a history; write nothing.

        Version and tables are read in one transaction: another probe may be creating them."""
        self.connection.execute("BEGIN")
        try:
            version = self.connection.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in self.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        finally:
            self.connection.execute("COMMIT")
        if version > len(MIGRATIONS):
            raise HistoryError(f"cannot use history {self.path}: its schema version {version} is newer "
                               f"than this program's ({len(MIGRATIONS)}); upgrade check_itop_backup")
        if version == 0 and tables:
            raise HistoryError(f"cannot use history {self.path}: not a check_itop_backup history "
                               f"(it has other tables: {', '.join(sorted(tables)[:5])})")
        missing = sorted(set(re.findall(r"CREATE TABLE (\w+)", "".join(MIGRATIONS[:version]))) - tables)
        if missing:
            raise HistoryError(f"cannot use history {self.path}: tables {', '.join(missing)} are missing "
                               "(not a check_itop_backup history, or damaged)")

    def _migrate(self) -> None:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        with self.transaction():
            version = self.connection.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        self.connection.execute(statement)
            self.connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _bound_busy_wait(self) -> None:
        """Let SQLite wait for another writer at most until just after the run's deadline."""
        seconds = min(BUSY_TIMEOUT_S, deadline.current.remaining() + _BUSY_MARGIN_S)
        self.connection.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _failure(self, error: Exception, doing: str) -> Exception:
        """The error to raise for *error*: the run's timeout when the deadline cut the wait,
        else a HistoryError naming the file."""
        if deadline.current.remaining() == 0:
            return deadline.StageTimeoutError(deadline.current.current, deadline.current.seconds)
        return HistoryError(f"cannot {doing} history {self.path}: {_reason(error)}")

    def _rows(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        try:
            return self.connection.execute(sql, parameters).fetchall()
        except (sqlite3.Error, UnicodeEncodeError) as error:
            raise self._failure(error, "read") from None

    def _write(self, sql: str, parameters: tuple = ()) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, parameters)
        except (sqlite3.Error, UnicodeEncodeError) as error:
            raise self._failure(error, "write") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction: all of it is committed, or none of it."""
        try:
            self._bound_busy_wait()
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise self._failure(error, "write") from None
        try:
            yield self.connection
        except BaseException:
            with suppress(sqlite3.Error):  # the block's own exception says what went wrong
                self.connection.execute("ROLLBACK")
            raise
        try:
            self.connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._failure(error, "write") from None

    def record_archive(self, series: str, path: str, size: int, mtime: float, inode: int,
                       seen_at: float, verdict: str | None = None) -> ArchiveRecord:
        """Insert the archive or, when it is already known, update when it was last seen.

        *verdict* (``ok``/``warning``/``critical``) replaces the stored one when given.
        Call inside ``transaction()``.
        """
        self._write(
            "INSERT INTO archives (series, path, size, mtime, inode, first_seen, last_seen, verdict)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (path, size, mtime, inode) DO UPDATE SET last_seen = excluded.last_seen,"
            " verdict = COALESCE(excluded.verdict, archives.verdict)",
            (series, path, size, mtime, inode, seen_at, seen_at, verdict),
        )
        row = self._rows(
            "SELECT * FROM archives WHERE path = ? AND size = ? AND mtime = ? AND inode = ?",
            (path, size, mtime, inode),
        )[0]
        return ArchiveRecord(*row)

    def archives_before(self, series: str, mtime: float, limit: int) -> list[ArchiveRecord]:
        """Return up to *limit* archives of *series* modified before *mtime*, newest first."""
        rows = self._rows(
            "SELECT * FROM archives WHERE series = ? AND mtime < ? ORDER BY mtime DESC LIMIT ?",
            (series, mtime, limit),
        )
        return [ArchiveRecord(*row) for row in rows]

    def count_archives(self, series: str) -> int:
        """Return how many distinct archives of *series* the history has seen."""
        return self._rows("SELECT COUNT(*) FROM archives WHERE series = ?", (series,))[0][0]

    def known_identities(self, series: str, since: float) -> set[tuple]:
        """Return the (path, size, mtime, inode) of the archives of *series* modified since *since*."""
        return set(self._rows(
            "SELECT path, size, mtime, inode FROM archives WHERE series = ? AND mtime >= ?",
            (series, since)))

    def listing(self, table: str) -> list[dict]:
        """Return every row of *table* (a key of ``_LISTINGS``) as a dict, by series then time;
        none for a table an older history, opened read-only and so not migrated, lacks."""
        present = self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        if not present:
            return []
        try:
            cursor = self.connection.execute(_LISTINGS[table])
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        except sqlite3.Error as error:
            raise self._failure(error, "read") from None

    def record_verdict_change(self, series: str, archive_id: int | None, state: str, causes: str,
                              reason: str, at: float) -> bool:
        """Record the series' verdict when its judged archive, *state* or *causes* (the results
        that are not OK) differ from its last recorded one; return whether a row was written.
        Call inside ``transaction()``."""
        last = self._rows("SELECT archive_id, state, causes FROM verdicts WHERE series = ?"
                          " ORDER BY changed_at DESC, id DESC LIMIT 1", (series,))
        if last and last[0] == (archive_id, state, causes):
            return False
        self._write("INSERT INTO verdicts (series, archive_id, state, causes, reason, changed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (series, archive_id, state, causes, reason, at))
        return True

    def open_ticket(self, series: str) -> TicketRecord | None:
        """Return the ticket of the series' current failure episode, or None when none is open."""
        rows = self._rows(
            "SELECT * FROM tickets WHERE series = ? AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            (series,),
        )
        return TicketRecord(*rows[0]) if rows else None

    def remember_ticket(self, series: str, ref: str, itop_key: str, title: str, org: str,
                        opened_at: float, last_update_at: float | None = None) -> TicketRecord:
        """Record the open ticket *ref* (iTop id *itop_key*) of *series*; call inside ``transaction()``."""
        cursor = self._write(
            "INSERT INTO tickets (series, ref, itop_key, title, org, opened_at, last_update_at, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
            (series, ref, itop_key, title, org, opened_at, last_update_at),
        )
        return TicketRecord(cursor.lastrowid, series, ref, itop_key, title, org, opened_at,
                            last_update_at, None, "open")

    def ticket_updated(self, ticket_id: int, at: float) -> None:
        """Note that the ticket got a log entry at *at*; call inside ``transaction()``."""
        self._write("UPDATE tickets SET last_update_at = ? WHERE id = ?", (at, ticket_id))

    def close_ticket(self, ticket_id: int, at: float, state: str) -> None:
        """End the ticket's episode at *at*, *state* saying how; call inside ``transaction()``."""
        self._write(
            "UPDATE tickets SET closed_at = ?, last_update_at = ?, state = ? WHERE id = ?",
            (at, at, state, ticket_id),
        )

    def record_run(self, series: str, started: float, finished: float, archive_path: str | None,
                   size: int | None, status: str, message: str) -> None:
        """Record one runner run (``ok`` or ``failed``); call inside ``transaction()``."""
        self._write(
            "INSERT INTO runs (series, started, finished, archive_path, size, status, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (series, started, finished, archive_path, size, status, message),
        )

    def upload_requested(self, series: str, path: str, destination: str, at: float) -> None:
        """Note that *path* is to be copied to *destination* (an ``s3://`` prefix), unless it
        already was; call inside ``transaction()``."""
        self._write("INSERT INTO uploads (series, archive_path, destination, state, requested)"
                    " VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (archive_path, destination) DO NOTHING",
                    (series, path, destination, at))

    def upload_ended(self, path: str, destination: str, state: str, key: str | None, message: str,
                     at: float) -> None:
        """Record an attempt: ``done`` (copied as *key*), ``pending`` (failed: the next run retries)
        or ``lost`` (the archive is gone before it was copied); call inside ``transaction()``."""
        self._write("UPDATE uploads SET state = ?, finished = ?, object_key = ?, message = ?"
                    " WHERE archive_path = ? AND destination = ?",
                    (state, at, key, message, path, destination))

    def upload_started(self, path: str, destination: str, upload_id: str, checksum: str,
                       identity: str) -> None:
        """Note the multipart upload of *path* that began (its id, checksum mode and the archive's
        identity as JSON): a run killed during it leaves what the next one resumes; call inside
        ``transaction()``."""
        self._write("UPDATE uploads SET upload_id = ?, checksum = ?, identity = ?"
                    " WHERE archive_path = ? AND destination = ?",
                    (upload_id, checksum, identity, path, destination))

    def started_upload(self, path: str, destination: str) -> tuple[str, str, str] | None:
        """The (upload id, checksum, identity) of the upload of *path* that began, or None."""
        rows = self._rows("SELECT upload_id, checksum, identity FROM uploads WHERE archive_path = ?"
                          " AND destination = ? AND upload_id IS NOT NULL", (path, destination))
        return rows[0] if rows else None

    def pending_uploads(self, series: str, destination: str) -> list[str]:
        """The archives of *series* still to be copied to *destination*, oldest request first."""
        return [row[0] for row in self._rows(
            "SELECT archive_path FROM uploads WHERE series = ? AND destination = ? AND state = 'pending'"
            " ORDER BY requested, id", (series, destination))]
    def run_counts(self, series: str) -> dict[str, int]:
        """Return how many runs of *series* the history holds, by status (``ok``, ``failed``)."""
        return dict(self._rows("SELECT status, COUNT(*) FROM runs WHERE series = ? GROUP BY status",
                               (series,)))

    def last_run(self, series: str, status: str | None = None) -> RunRecord | None:
        """Return the newest run of *series* (with *status*: the newest of that status), or None."""
        where, parameters = ("AND status = ?", (series, status)) if status else ("", (series,))
        rows = self._rows(f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE series = ? {where}"
                          " ORDER BY started DESC, id DESC LIMIT 1", parameters)
        return RunRecord(**dict(zip(RUN_FIELDS, rows[0]))) if rows else None

    def latest_verification(self, series: str, level: str) -> VerificationRecord | None:
        """Return the newest verification of *series* at *level*, whatever its result."""
        return self._newest_verification("a.series = ? AND v.level = ?", (series, level))

    def verification(self, path: str, size: int, mtime: float, inode: int,
                     levels: tuple[str, ...]) -> VerificationRecord | None:
        """Return the newest stored verification of this archive identity at one of *levels*."""
        marks = ", ".join("?" * len(levels))
        return self._newest_verification("a.path = ? AND a.size = ? AND a.mtime = ? AND a.inode = ?"
                                         f" AND v.level IN ({marks})", (path, size, mtime, inode, *levels))

    def latest_verification_of(self, path: str, level: str) -> VerificationRecord | None:
        """The newest verification at *level* of an archive at *path* (an absolute path, or the
        name the archive had in its directory), whatever its identity."""
        return self._newest_verification("(a.path = ? OR a.path LIKE ? ESCAPE '\\') AND v.level = ?",
                                         (path, "%/" + re.sub(r"([\\%_])", r"\\\1", path), level))

    def _newest_verification(self, where: str, parameters: tuple) -> VerificationRecord | None:
        """The newest verification whose row (``v``) and archive's (``a``) match *where*."""
        rows = self._rows(_VERIFICATIONS + where + " ORDER BY v.verified_at DESC LIMIT 1", parameters)
        return VerificationRecord(*rows[0]) if rows else None

    def previous_verification(self, series: str, before: float, level: str) -> VerificationRecord | None:
        """Return the verification at *level* of the newest archive of *series* older than
        *before* (mtime) that was verified at that level without a critical result."""
        found = self.previous_verifications(series, before, level, 1)
        return found[0] if found else None

    def previous_verifications(self, series: str, before: float, level: str,
                               limit: int) -> list[VerificationRecord]:
        """The verifications at *level* of the newest *limit* archives of *series* older than
        *before* (mtime) verified at that level without a critical result, newest first."""
        rows = self._rows(
            _VERIFICATIONS + "a.series = ? AND a.mtime < ?"
            " AND v.level = ? AND v.state != 'critical' ORDER BY a.mtime DESC LIMIT ?",
            (series, before, level, limit),
        )
        return [VerificationRecord(*row) for row in rows]

    def record_verification(self, archive_id: int, level: str, state: str, message: str,
                            details: str, verified_at: float) -> None:
        """Store (or replace) the archive's verification at *level*; call inside ``transaction()``."""
        self._write(
            "INSERT OR REPLACE INTO verifications (archive_id, level, state, message, details, verified_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (archive_id, level, state, message, details, verified_at),
        )


class RunRecord(SimpleNamespace):
    """One run of the runner (a row of ``runs``: RUN_FIELDS). Not a named tuple: this module is on
    the probe's start-up path, and creating a named tuple class costs it more than this one."""


class VerificationRecord(namedtuple("VerificationRecord", "path level state message details "
                                                           "verified_at")):
    """A stored verification: the archive's ``path``, the ``level`` asked, its outcome, and
    ``details`` (JSON text, see ``VerificationReport.details``)."""

    __slots__ = ()


def _create_shared(path: str) -> None:
    """Create a missing history group-writable whatever the umask: the runner and the monitoring
    user share it through the directory's group (SQLite gives its -wal and -shm the same mode)."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660)
    except FileExistsError:
        return
    try:
        os.fchmod(handle, 0o660)
    finally:
        os.close(handle)


def _reason(error: BaseException) -> str:
    if isinstance(error, UnicodeEncodeError):
        return "a path is not valid UTF-8"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)
