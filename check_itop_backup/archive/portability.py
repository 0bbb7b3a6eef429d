"""What keeps a dump from loading elsewhere, found as it streams past, and a filter that removes it.

A dump of one server does not always load into another:

* MariaDB's dump client writes ``/*M!999999\\- enable the sandbox mode */`` as its first line
  since 10.5.25, 10.6.18 and 10.11.8; MySQL's ``mysql`` client and older MariaDB clients read
  ``\\-`` as a client command and stop (``ERROR at line 1: Unknown command '\\-'``);
* ``DEFINER=`` clauses (views, triggers, routines) make the load need SUPER (SET_USER_ID on
  MySQL 8) whenever the definer is not the loading account;
* GTID statements (MySQL's ``SET @@GLOBAL.GTID_PURGED``, ``SET @@SESSION.SQL_LOG_BIN``;
  MariaDB's ``gtid_slave_pos``) need SUPER, and a server with GTID mode refuses a
  ``GTID_PURGED`` its own history overlaps;
* a character set other than utf8mb4 (``SET NAMES``, a table's ``DEFAULT CHARSET``): iTop creates
  its tables in utf8mb4 (``DEFAULT_CHARACTER_SET``, core/config.class.inc.php); such a dump cannot
  hold every character iTop stores.

``PortabilityLint`` looks only at the lines that are not INSERT rows (those sqlguard.py's
``DumpGuard`` reads; mysqldump escapes newlines in values, so a line start is always a
statement's); ``PortableFilter`` drops the sandbox line and
the GTID statements and strips ``DEFINER=`` clauses, the rows passing through untouched.
"""

from __future__ import annotations

import re

from check_itop_backup.archive.sqlguard import SANDBOX_LINE, strip_definer

_MARKS = (b"DEFINER=", b"GTID", b"gtid", b"SQL_LOG_BIN", b"CHARSET=", b"SET NAMES", b"CREATE TABLE `")
_LINE_HEAD = 64  # bytes of a line that say what it is
_CHARSET = re.compile(rb"(?:DEFAULT CHARSET=|SET NAMES )(\w+)")
_TABLE = re.compile(rb"CREATE TABLE `((?:[^`]|``)+)`")
_GTID_LINE = re.compile(rb"(?:/\*!\d+\s*)?(?:--\s*)?SET\s+(@@GLOBAL\.GTID_PURGED|@@SESSION\.SQL_LOG_BIN|"
                        rb"@MYSQLDUMP_TEMP_LOG_BIN|GLOBAL\s+gtid_slave_pos)", re.I)
_MAX_HELD = 16 << 20  # a line that is not an INSERT is held whole up to this (sqlguard.MAX_LINE)

REFUSALS = {
    "sandbox": ("the dump starts with MariaDB's sandbox line (/*M!999999\\- enable the sandbox mode */): "
                "MySQL's mysql client and MariaDB clients before 10.5.25, 10.6.18 and 10.11.8 refuse it "
                "(ERROR at line 1: Unknown command '\\-')"),
    "definer": ("the dump holds DEFINER= clauses ({what}): loading it as another account needs SUPER "
                "(SET_USER_ID on MySQL 8), which iTop's database user does not have"),
    "gtid": ("the dump holds GTID statements ({what}): they need SUPER, and a server with GTID mode "
             "refuses a GTID_PURGED its own history overlaps"),
    "charset": ("the dump is not all utf8mb4 ({what}): iTop creates its tables in utf8mb4 "
                "(DEFAULT_CHARACTER_SET) and such tables cannot hold every character it stores"),
}


def _is_rows(head: bytes) -> bool:
    """The line is an INSERT statement or a row of one (mariadb-dump's one row per line)."""
    return head.startswith((b"INSERT INTO", b"("))


class PortabilityLint:
    """What keeps the dump from loading elsewhere. sqlguard.py's ``DumpGuard`` gives it every
    line it reads (``line``: not the rows it passes over); ``findings()`` then says what it saw."""

    def __init__(self) -> None:
        self.lines = 0
        self.sandbox = False
        self.definers = 0
        self.gtid: dict[str, None] = {}
        self.charsets: dict[str, list[str]] = {}  # charset -> where ("SET NAMES" or tables)
        self._table = ""  # the table of the last CREATE TABLE

    def line(self, data: bytes, start: int, stop: int) -> None:
        """Take the whole line ``data[start:stop]``."""
        self.lines += 1
        if self.lines == 1 and data.startswith(SANDBOX_LINE, start, stop):
            self.sandbox = True
        if not any(data.find(mark, start, stop) >= 0 for mark in _MARKS):
            return
        line = data[start:stop]
        if line.startswith(b"CREATE TABLE `"):
            table = _TABLE.match(line)
            self._table = table.group(1).decode("utf-8", "replace") if table else ""
        if b"DEFINER=" in line:
            self.definers += 1
        found = _CHARSET.search(line)
        if found and found.group(1).lower() != b"utf8mb4":
            where = "SET NAMES" if b"SET NAMES" in found.group(0) else f"table {self._table}"
            self.charsets.setdefault(found.group(1).decode("ascii", "replace"), []).append(where)
        gtid = _GTID_LINE.match(line.lstrip())
        if gtid:
            self.gtid[gtid.group(1).decode("ascii", "replace")] = None

    def findings(self) -> list[tuple[str, str]]:
        """``(kind, sentence)`` for each kind of problem found: sandbox, definer, gtid, charset."""
        found = []
        if self.sandbox:
            found.append(("sandbox", REFUSALS["sandbox"]))
        if self.definers:
            found.append(("definer", REFUSALS["definer"].format(what=f"{self.definers} found")))
        if self.gtid:
            found.append(("gtid", REFUSALS["gtid"].format(what=", ".join(self.gtid))))
        if self.charsets:
            what = "; ".join(f"{charset}: {', '.join(where[:5])}" + (" …" if len(where) > 5 else "")
                             for charset, where in self.charsets.items())
            found.append(("charset", REFUSALS["charset"].format(what=what)))
        return found


class PortableFilter:
    """The dump without the sandbox line, GTID statements and ``DEFINER=`` clauses.

    ``feed(chunk)`` returns what can be written so far, ``finish()`` the rest. Rows (INSERT lines)
    pass through as they come; any other line is held until whole (at most 16 MiB: a longer one
    passes unchanged), then dropped, rewritten or kept.

    >>> f = PortableFilter()
    >>> out = f.feed(b"/*M!999999\\\\- enable the sandbox mode */ \\n-- MariaDB dump\\n"
    ...              b"SET @@SESSION.SQL_LOG_BIN= 0;\\n")
    >>> out + f.feed(b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\\n"
    ...              b"INSERT INTO `t` VALUES (1);\\n")
    b'-- MariaDB dump\\n/*!50013 SQL SECURITY DEFINER */\\nINSERT INTO `t` VALUES (1);\\n'
    """

    def __init__(self) -> None:
        self._held = bytearray()  # the start of a line not judged yet, or not whole yet
        self._passing = False  # inside a line that passes through (rows, or too long to hold)
        self._first = True
        self._in_gtid = False  # inside a GTID statement written over several lines

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        position = 0
        while position < len(chunk):
            newline = chunk.find(b"\n", position)
            stop = len(chunk) if newline < 0 else newline + 1
            if self._passing:
                out += chunk[position:stop]
                self._passing = newline < 0
            else:
                self._held += chunk[position:stop]
                if newline >= 0:
                    out += self._line(bytes(self._held))
                    self._held.clear()
                elif len(self._held) > _MAX_HELD or (len(self._held) >= _LINE_HEAD
                                                     and _is_rows(bytes(self._held[:_LINE_HEAD]).lstrip())
                                                     and not self._in_gtid):
                    out += self._held
                    self._held.clear()
                    self._passing = True
            position = stop
        return bytes(out)

    def finish(self) -> bytes:
        """What is held at the end of the dump."""
        rest, self._held = bytes(self._held), bytearray()
        return self._line(rest) if rest else b""

    def _line(self, line: bytes) -> bytes:
        first, self._first = self._first, False
        if first and line.startswith(SANDBOX_LINE) and not line[len(SANDBOX_LINE):].strip():
            return b""
        if self._in_gtid or _GTID_LINE.match(line.lstrip()):
            self._in_gtid = not line.rstrip().endswith(b";")
            return b""
        if not _is_rows(line.lstrip()) and b"DEFINER" in line:
            return strip_definer(line.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        return line
