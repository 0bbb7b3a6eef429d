"""iTop's mysqldump command, and the running dump whose SQL a backup reads.

The command follows iTop's ``DBBackup::DoBackup``: ``--opt --skip-lock-tables
--default-character-set=<utf8|utf8mb4> --add-drop-database --single-transaction``, iTop's
host/port/transport and TLS rules, and the table list when ``db_subname`` (the table
prefix) is set. Unlike iTop, the prefix is LIKE-escaped (server.py), the output goes to a
pipe (never a file), and the password goes through ``credentials``.
"""

from __future__ import annotations

from collections.abc import Sequence

from check_itop_backup.archive.dumpscan import TRAILER
from check_itop_backup.database.process import Child, connection_options, find_program, help_text
from check_itop_backup.database.server import DatabaseError, ServerFacts
from check_itop_backup.itop.instance import DatabaseSettings

DUMP_PROGRAMS = ("mysqldump", "mariadb-dump")


def dump_command(program: str, defaults_option: str, settings: DatabaseSettings,
                 facts: ServerFacts, portable: bool = False) -> tuple[str, ...]:
    """Return the mysqldump argv; *defaults_option* (``--defaults-extra-file=…``) comes first.
    *portable* adds the options that leave out what another server refuses, where the program
    has them (MySQL's ``--set-gtid-purged=OFF``; the rest is filtered, archive/portability.py)."""
    return (
        (program, defaults_option, "--opt", "--skip-lock-tables",
         f"--default-character-set={facts.charset}", "--add-drop-database", "--single-transaction")
        + (portable_options(program) if portable else ())
        + connection_options(settings, facts.version)
        + ("--", settings.name)
        + (tuple(table.name for table in facts.tables) if settings.subname else ())
    )


def portable_options(program: str) -> tuple[str, ...]:
    """``--set-gtid-purged=OFF`` when *program* (MySQL's mysqldump) has it; MariaDB's writes GTID
    statements only with ``--gtid`` and ``--master-data``, which a backup does not give."""
    return ("--set-gtid-purged=OFF",) if b"--set-gtid-purged" in help_text(program) else ()


def find_dump_program(bindir: str = "") -> str:
    """Return the full path of mysqldump (or mariadb-dump) in *bindir*, else on PATH."""
    return find_program(DUMP_PROGRAMS, bindir)


def start_dump(program: str, settings: DatabaseSettings, facts: ServerFacts, portable: bool = False) -> Child:
    """Start mysqldump; read its SQL from ``pipe``, then call ``finish_dump``."""
    return Child(lambda option: dump_command(program, option, settings, facts, portable), settings.password)


def finish_dump(dump: Child, tail: bytes) -> list[str]:
    """Wait for the dump; return its stderr lines (warnings) or raise DatabaseError.

    *tail* is the end of the dump: without mysqldump's trailer the dump is incomplete.
    """
    status = dump.wait()
    if status != 0:
        raise DatabaseError(f"mysqldump failed (exit {status}): {meaningful_line(dump.stderr_lines)}")
    if not tail.rstrip().rsplit(b"\n", 1)[-1].startswith(TRAILER):
        raise DatabaseError("the dump is incomplete: it does not end with mysqldump's "
                            f"'{TRAILER.decode()}' trailer")
    return dump.stderr_lines


def meaningful_line(lines: Sequence[str]) -> str:
    """Return the line of mysqldump's stderr that says what went wrong.

    >>> meaningful_line(["Warning: x", "mysqldump: Error 2020: Got packet bigger than "
    ...                  "'max_allowed_packet' bytes", "-- end"])
    "mysqldump: Error 2020: Got packet bigger than 'max_allowed_packet' bytes"
    """
    stripped = [line.strip() for line in lines if line.strip()]
    errors = [line for line in stripped if "error" in line.lower()]
    return (errors or stripped or ["no message"])[-1]
