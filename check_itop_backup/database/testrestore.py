"""The ``restore`` verification level: prove that an archive restores.

``verify_by_restore(archive, settings)`` verifies the archive at the ``dump`` level, loads its
dump into a uniquely named scratch database (server.scratch_database, dropped on every
way out: success, failure, timeout, SIGTERM), then compares what the server holds with
what the archive promised:

* our runner's archives: the table list, types and row counts of ``manifest.json``;
* iTop's own archives (no manifest): the dump's own ``CREATE TABLE`` statements and the
  rows of its ``INSERT`` statements, counted as the dump streams past (``RowCounter``);

and, when it is an iTop database (tables named ``<db_subname>priv_*``), that iTop's core
tables are there: ``priv_module_install`` and ``priv_user`` with rows, ``ticket``.
The result is a ``VerificationReport`` at level ``restore``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time

from check_itop_backup.archive.inspect import (
    SMALL_MEMBER_LIMIT,
    Collector,
    Discard,
    VerificationReport,
    verify_archive,
)
from check_itop_backup.archive.layout import CONFIG_MEMBER, MANIFEST_MEMBER
from check_itop_backup.database.load import find_client_program, load_dump
from check_itop_backup.database.recovery import token_of
from check_itop_backup.database.server import DatabaseError, scratch_database, server_version, table_rows
from check_itop_backup.itop.instance import DatabaseSettings

LEVEL = "restore"
CORE_TABLES = ("priv_module_install", "priv_user", "ticket")
NON_EMPTY_CORE_TABLES = ("priv_module_install", "priv_user")
_INSERT = re.compile(rb"INSERT INTO `((?:[^`]|``)+)` VALUES")
_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'")


class RowCounter:
    """Counts the rows of a mysqldump's INSERT statements per table, as the dump streams past.

    mysqldump escapes newlines inside values, so every line lies within one statement and a
    line ending with ``;`` ends it; values hold no parentheses outside string literals, so
    each ``(`` left once the literals are removed opens a row.

    >>> counter = RowCounter()
    >>> dump = (b"INSERT INTO `t` VALUES (1,'a(b'),(2,'it\\\\'s (x)');\\n"
    ...         b"INSERT INTO `u` VALUES\\n(1),\\n(2);\\n")
    >>> for index in range(len(dump)):
    ...     counter.write(dump, index, index + 1)
    >>> counter.rows
    {'t': 2, 'u': 2}
    """

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.active = True
        self._partial = b""
        self._table: str | None = None

    def write(self, data: bytes, start: int, end: int) -> None:
        if not self.active:
            return
        chunk = self._partial + data[start:end]
        last = chunk.rfind(b"\n")
        if last < 0:
            self._partial = chunk
            return
        self._partial = chunk[last + 1:]
        for line in chunk[:last].split(b"\n"):
            self._line(line)

    def _line(self, line: bytes) -> None:
        if self._table is None:
            if not line.startswith(b"INSERT INTO `"):
                return
            match = _INSERT.match(line)
            if match is None:
                return
            self._table = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
            line = line[match.end():]
        values = _STRING.sub(b"", line) if b"'" in line else line
        self.rows[self._table] = self.rows.get(self._table, 0) + values.count(b"(")
        if line.rstrip().endswith(b";"):
            self._table = None


class _Keeper:
    """Keeps the small members the comparison needs (manifest.json, config-itop.php)."""

    def __init__(self, counter: RowCounter) -> None:
        self.counter = counter
        self.kept: dict[str, Collector] = {}

    def open_member(self, name: str, kind: bytes):
        if name not in (MANIFEST_MEMBER, CONFIG_MEMBER):
            return Discard()
        if name == MANIFEST_MEMBER:
            self.counter.active = False  # the manifest has the counts: no need to count
        self.kept[name] = Collector(SMALL_MEMBER_LIMIT)
        return self.kept[name]


def verify_by_restore(archive: str, settings: DatabaseSettings, bindir: str = "") -> VerificationReport:
    """Verify *archive* by restoring it into a scratch database on *settings*' server.

    Return the report (``critical`` with the reason when the archive does not verify, does
    not load or does not match); raise DatabaseError when the server cannot be used, OSError
    when the archive cannot be read. ``StageTimeoutError`` passes through, scratch dropped.
    """
    started = time.monotonic()
    report = verify_archive(archive, "dump")
    if report.state == "critical" or report.container != "tar.gz":
        reason = report.reason if report.state == "critical" else "only .tar.gz archives are restored"
        return dataclasses.replace(report, level=LEVEL, state="critical", reason=reason,
                                   seconds=time.monotonic() - started)
    program = find_client_program(bindir)
    version = server_version(settings)
    counter = RowCounter()
    keeper = _Keeper(counter)
    with scratch_database(settings, "cib_scratch_") as scratch:
        try:
            loaded = load_dump(archive, settings, scratch, token=token_of(scratch), program=program,
                               version=version, also=counter,
                               files=keeper)
        except DatabaseError as error:
            return dataclasses.replace(report, level=LEVEL, state="critical",
                                       reason=f"does not restore: {error}",
                                       seconds=time.monotonic() - started)
        restored = table_rows(settings, scratch)
    expected, source, subname = _expected(keeper, counter, report.tables)
    findings = _compare(expected, restored, source) + _core_findings(restored, subname)
    seconds = time.monotonic() - started
    rows = sum(count for _, count in restored.values() if count is not None)
    if findings:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        state, reason = "critical", f"restored but {findings[0]}{more}"
    else:
        state = report.state
        tables = sum(kind == "table" for kind, _ in restored.values())
        reason = (f"restored into a scratch database in {seconds:.1f} s: {tables} tables, "
                  f"{rows} rows, matching {source}")
        if report.state == "warning":
            reason = f"{reason}; {report.reason}"
    return dataclasses.replace(report, level=LEVEL, reached=LEVEL if not findings else "dump", state=state,
                               reason=reason, seconds=seconds,
                               warnings=report.warnings + loaded.warnings + tuple(findings[1:]))


def _expected(keeper: _Keeper, counter: RowCounter,
              dump_tables: tuple[str, ...]) -> tuple[dict[str, tuple[str, int | None]], str, str]:
    """Return ({name: (type, rows)}, where it comes from, the iTop table prefix)."""
    subname = ""
    if CONFIG_MEMBER in keeper.kept:
        from check_itop_backup.itop.phpconfig import PhpConfigError, parse_php_config

        try:
            config = parse_php_config(bytes(keeper.kept[CONFIG_MEMBER].data).decode("utf-8", "replace"))
            subname = str((config.get("MySettings") or {}).get("db_subname") or "")
        except PhpConfigError:
            pass
    if MANIFEST_MEMBER in keeper.kept:
        manifest = json.loads(bytes(keeper.kept[MANIFEST_MEMBER].data))
        subname = str((manifest.get("database") or {}).get("subname") or subname)
        expected = {table["name"]: (table.get("type", "table"), table.get("rows"))
                    for table in manifest.get("tables", ())}
        return expected, "the manifest", subname
    expected = {name: ("table", counter.rows.get(name, 0)) for name in dump_tables}
    return expected, "the dump's statements", subname


def _compare(expected: dict[str, tuple[str, int | None]], restored: dict[str, tuple[str, int | None]],
             source: str) -> list[str]:
    findings = []
    missing = [name for name in expected if name not in restored]
    if missing:
        findings.append(f"{len(missing)} table(s) of {source} missing after the restore: "
                        f"{', '.join(missing)}")
    extra = [name for name in restored if name not in expected and restored[name][0] == "table"]
    if extra:
        findings.append(f"{len(extra)} table(s) restored that {source} does not list: {', '.join(extra)}")
    for name, (kind, rows) in expected.items():
        if name in restored and kind == "table" and rows is not None and restored[name][1] != rows:
            findings.append(f"table {name} has {restored[name][1]} rows after the restore, "
                            f"{source} says {rows}")
    return findings


def _core_findings(restored: dict[str, tuple[str, int | None]], subname: str) -> list[str]:
    if not any(name.startswith(f"{subname}priv_") for name in restored):
        return []  # not an iTop database
    findings = [f"iTop core table {subname}{table} is missing" for table in CORE_TABLES
                if f"{subname}{table}" not in restored]
    findings += [f"iTop core table {subname}{table} is empty" for table in NON_EMPTY_CORE_TABLES
                 if restored.get(f"{subname}{table}", ("table", 1))[1] == 0]
    return findings
