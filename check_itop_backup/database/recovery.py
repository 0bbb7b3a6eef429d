"""Finish or undo what a killed restore left on the server, and tell a live restore from a dead one.

A restore (or test restore) leaves nothing when it ends, whatever ends it, except kill -9
and power loss. To recover from those, every object of a run carries the run's token: the
scratch database ``cib_restore_<token>`` (``cib_scratch_<token>``), the load account
``cib_load_<token>``, the target's replaced tables ``_cib_old_<token>_<n>``; while the run
lives it holds the named lock ``cib_run_<token>`` (``GET_LOCK``, released by the server when
the connection dies; server.py ``run_lock``). Just before its atomic ``RENAME TABLE`` the
swap (load.py) writes the views and triggers it must re-create into the ``_cib_journal``
table of the scratch database. What a killed restore left in the iTop root is recovered by
archive/extract.py's ``recover_files``; ``recover`` does both, for the restore and the probe.

``recover_server`` acts only on objects whose lock is free: a dead run's. Before its rename
the restore changed nothing, so the leftovers are removed; after it the swap is finished
(views and triggers re-created, replaced tables dropped), then the leftovers removed.
"""

from __future__ import annotations

import contextlib
import re

from check_itop_backup.archive.extract import FilesError, recover_files
from check_itop_backup.database.server import LOCK_PREFIX, DatabaseError, connect, quote_name
from check_itop_backup.itop.instance import DatabaseSettings

JOURNAL_TABLE = "_cib_journal"
OLD_TABLE_PREFIX = "_cib_old_"
_RUN_ID = r"([0-9a-f]{16})"
_SCRATCH = re.compile(rf"cib_(?:restore|scratch)_{_RUN_ID}")
_ACCOUNT = re.compile(rf"cib_load_{_RUN_ID}")
_OLD_TABLE = re.compile(rf"{OLD_TABLE_PREFIX}{_RUN_ID}_\d+")
_VANISHED = (1049, 1146)  # unknown database, unknown table: dropped meanwhile


class RecoveryError(Exception):
    """Leftovers of a killed restore that cannot be cleaned; the message says what and where."""


def token_of(name: str) -> str:
    """Return the run token at the end of a scratch database's name (``cib_restore_<token>``)."""
    return name.rsplit("_", 1)[1]


def old_table_name(token: str, index: int) -> str:
    """The name a replaced table of the target gets until it is dropped."""
    return f"{OLD_TABLE_PREFIX}{token}_{index}"


def recover_server(settings: DatabaseSettings) -> list[str]:
    """Finish or undo what dead runs left on *settings*' server; return what was done.

    Raise RecoveryError when leftovers remain that this account cannot remove.
    """
    import pymysql

    done: list[str] = []
    try:
        with connect(settings) as connection, connection.cursor() as cursor:
            dead = _dead_tokens(cursor)
            if not dead:
                return []
            for schema in dead["scratch"]:
                done += _finish_swap(cursor, schema)
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_name(schema)}")
                done.append(f"dropped the scratch database {schema}")
            for schema, table in dead["old"]:
                cursor.execute(f"DROP TABLE IF EXISTS {quote_name(schema)}.{quote_name(table)}")
                done.append(f"dropped {schema}.{table}, replaced by a restore")
            for user, host in dead["accounts"]:
                cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
                done.append(f"dropped the load account {user}@{host}")
    except (DatabaseError, pymysql.MySQLError) as error:
        left = "; ".join(done) if done else "nothing could be cleaned"
        raise RecoveryError(f"a killed restore left objects on the server that cannot be cleaned "
                            f"({error.args[-1]}); {left}") from None
    return [f"a killed restore had left work behind: {item}" for item in done]


def _dead_tokens(cursor) -> dict[str, list]:
    cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                   "WHERE SCHEMA_NAME LIKE 'cib\\_restore\\_%' OR SCHEMA_NAME LIKE 'cib\\_scratch\\_%'")
    scratch = [row[0] for row in cursor.fetchall() if _SCRATCH.fullmatch(row[0])]
    cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                   "WHERE TABLE_NAME LIKE '\\_cib\\_old\\_%'")
    old = [(schema, table, match.group(1)) for schema, table in cursor.fetchall()
           if (match := _OLD_TABLE.fullmatch(table))]
    accounts: list[tuple[str, str]] = []
    with contextlib.suppress(Exception):  # reading mysql.user needs a right iTop's user lacks
        cursor.execute("SELECT User, Host FROM mysql.user WHERE User LIKE 'cib\\_load\\_%'")
        accounts = [tuple(row) for row in cursor.fetchall() if _ACCOUNT.fullmatch(row[0])]
    tokens = {token_of(name) for name in scratch} | {token for _, _, token in old} \
        | {token_of(user) for user, _ in accounts}
    alive = set()
    for token in tokens:
        cursor.execute("SELECT IS_FREE_LOCK(%s)", (LOCK_PREFIX + token,))
        if cursor.fetchone()[0] != 1:
            alive.add(token)
    found = {"scratch": [s for s in scratch if token_of(s) not in alive],
             "old": [(schema, table) for schema, table, token in old if token not in alive],
             "accounts": [(u, h) for u, h in accounts if token_of(u) not in alive]}
    return found if any(found.values()) else {}


def _finish_swap(cursor, scratch: str) -> list[str]:
    """When the dead run's RENAME happened, re-create the views and triggers it had journaled."""
    cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (scratch,))
    names = {row[0] for row in cursor.fetchall()}
    if names != {JOURNAL_TABLE}:
        return []  # no journal (killed before the swap) or tables still there (before the rename)
    import pymysql

    try:
        cursor.execute(f"SELECT target, kind, name, sql_mode, statement "
                       f"FROM {quote_name(scratch)}.{JOURNAL_TABLE}")
    except pymysql.MySQLError as error:
        if error.args[0] in _VANISHED:
            return []  # another recovery, beside this one, finished it and dropped the scratch
        raise
    rows = cursor.fetchall()
    if not rows:
        return []
    target = rows[0][0]
    cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (target,))
    if not cursor.fetchone():
        return [f"nothing to finish in {target}: it was dropped since"]
    cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (target,))
    present = {row[0] for row in cursor.fetchall()}
    cursor.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
                   (target,))
    present |= {row[0] for row in cursor.fetchall()}
    cursor.execute(f"USE {quote_name(target)}")
    missing = [(kind, name, mode, statement) for _, kind, name, mode, statement in rows
               if kind in ("VIEW", "TRIGGER") and name not in present]
    create_all(cursor, [statement for kind, _, _, statement in missing if kind == "VIEW"])
    create_triggers(cursor, [(mode, statement) for kind, _, mode, statement in missing if kind == "TRIGGER"])
    created = [name for _, name, _, _ in missing]
    return [f"finished the swap into {target}" + (f" (re-created {', '.join(created)})" if created else "")]


def create_triggers(cursor, triggers: list[tuple[str, str]]) -> None:
    """Run each CREATE TRIGGER statement of *triggers* ``(sql_mode, statement)`` under its sql_mode."""
    for sql_mode, statement in triggers:
        cursor.execute("SET SESSION sql_mode = %s", (sql_mode,))
        cursor.execute(statement)


def create_all(cursor, statements: list[str]) -> None:
    """Run CREATE VIEW *statements*, retrying those that fail until all exist (views built on
    views); raise the last error when a round creates none."""
    import pymysql

    pending = list(statements)
    while pending:
        failed, last_error = [], None
        for statement in pending:
            try:
                cursor.execute(statement)
            except pymysql.MySQLError as error:
                failed.append(statement)
                last_error = error
        if len(failed) == len(pending):
            raise last_error
        pending = failed


def recover(settings: DatabaseSettings | None, itop_root: str = "") -> tuple[list[str], list[str]]:
    """Finish or undo what killed restores left on *settings*' server (when given) and in
    *itop_root* (when given); return what was done and what could not be."""
    steps = ([lambda: recover_server(settings)] if settings is not None else []) \
        + ([lambda: recover_files(itop_root)] if itop_root else [])
    done, problems = [], []
    for step in steps:
        try:
            done += step()
        except (RecoveryError, FilesError) as error:
            problems.append(str(error))
    return done, problems
