"""Read a dump as the mysql client will, and refuse whatever is not a data statement.

The mysql/mariadb client runs more than SQL: outside quotes, a backslash command anywhere
on a line (``\\!`` runs a shell, ``\\.`` reads a file, ``\\u`` switches database) and a
named command (``system``, ``source``, ``use``, ``connect``…) at the start of a statement.
The load starts the client in binary mode (which refuses them) and, where it has it,
sandbox mode; ``DumpGuard`` is the check that does not depend on the client. It splits the
dump into statements as MariaDB's client does (quotes with backslash escapes; ``#``,
``-- `` and ``/* */`` comments; ``/*!`` and ``/*M!`` read as statement text; ``DELIMITER``)
and raises ``HostileDumpError``, naming the line, at the first of:

* a backslash outside quotes, comments included (mysqldump writes none there), except
  MariaDB's own sandbox line;
* a named client command, or a ``DELIMITER`` other than mysqldump's ``;;`` and ``;``;
* a statement a dump does not hold: not SET, CREATE, DROP, ALTER, INSERT, REPLACE, LOCK,
  UNLOCK, COMMIT, START or BEGIN; ``CREATE``/``DROP``/``ALTER`` of a database, schema,
  user, role or server; a table of another database at its head (``INSERT INTO `live`.`t```);
* a line that names ``NO_BACKSLASH_ESCAPES`` (the client would then split strings
  differently) or, outside an INSERT, is longer than 16 MiB.

mysqldump writes an extended INSERT on one line, mariadb-dump its head and then one row per
line (starting with ``(``); both escape newlines inside values. With ``check_inserts=False``
(the verification pass, which must keep up with inflation) the lines of a plain ``INSERT INTO
`…``` statement are passed over unread; the load reads them too, whole lines of rows at once.

>>> guard = DumpGuard()
>>> dump = b"SET NAMES utf8mb4;\\nINSERT INTO `t` VALUES (1,'a\\\\! b');\\nUSE `live`;\\n"
>>> try:
...     guard.write(dump, 0, len(dump))
... except HostileDumpError as error:
...     print(error)
line 3: USE would switch the load to another database (USE `live`;)
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_LINE = 16 << 20  # a line that does not begin an INSERT
MAX_INSERT_LINE = 256 << 20  # mysql's client refuses statements over max_allowed_packet, 16 MiB by default
SANDBOX_LINE = b"/*M!999999\\- enable the sandbox mode */"
_INSERT_HEAD = b"INSERT INTO `"
_PLAIN_INSERT = re.compile(rb"INSERT INTO `(?:[^`\n]|``)*` (?:VALUES|\()")
_HEAD = 160  # bytes of a statement's text enough to judge it
_QUOTE = 60

CLIENT_COMMANDS = frozenset({
    "?", "charset", "clear", "connect", "edit", "ego", "exit", "go", "help", "nopager", "notee",
    "nowarning", "pager", "print", "prompt", "quit", "rehash", "sandbox", "source", "status", "system",
    "tee", "use", "warnings"})
DUMP_STATEMENTS = frozenset({
    b"SET", b"CREATE", b"DROP", b"ALTER", b"INSERT", b"REPLACE", b"LOCK", b"UNLOCK", b"COMMIT", b"START",
    b"BEGIN"})
DELIMITERS = (b";", b";;")

_NORMAL, _SQUOTE, _DQUOTE, _BTICK, _COMMENT = range(5)
# No possessive quantifiers in the patterns below: Python reads them only from 3.11, and
# 3.11.2 (Debian 12's python3) matched some of them wrongly. None can backtrack far: nothing
# follows their outer repetition, and quoted text is matched unrolled.
_CLOSING = {_SQUOTE: b"'", _DQUOTE: b'"', _BTICK: b"`"}
_OPENING = {b"'"[0]: _SQUOTE, b'"'[0]: _DQUOTE, b"`"[0]: _BTICK}
# Statement text up to the next byte that needs a decision; with strings and identifiers too.
_PLAIN = re.compile(rb"(?:[^'\"`\\#/;\s-]+|-(?!-)|/(?!\*))*")
_RUN = re.compile(rb"(?:[^'\"`\\#/;-]+|-(?!-)|/(?!\*)|'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'"
                  rb"|\"[^\"\\]*(?:(?:\\.|\"\")[^\"\\]*)*\"|`(?:[^`]+|``)*`)*", re.S)
# Plain rows over several lines: no quoted text runs over a line end (mysqldump escapes newlines).
_ROWS = re.compile(rb"(?:[^'\"`\\#/;-]+|-(?!-)|/(?!\*)|'[^'\\\n]*(?:(?:\\[^\n]|'')[^'\\\n]*)*'"
                   rb"|\"[^\"\\\n]*(?:(?:\\[^\n]|\"\")[^\"\\\n]*)*\"|`(?:[^`\n]+|``)*`)*")
_INSIDE = {_SQUOTE: re.compile(rb"(?:[^'\\]+|\\.)*", re.S),
           _DQUOTE: re.compile(rb"(?:[^\"\\]+|\\.)*", re.S),
           _BTICK: re.compile(rb"[^`]*")}
_WORD = re.compile(rb"[A-Za-z_?]+")
_SPACE = re.compile(rb"\s*")
_NO_BACKSLASH_ESCAPES = re.compile(rb"NO_BACKSLASH_ESCAPES", re.I)
_VERSION_OPENER = re.compile(rb"/\*M?!\d*")
_NAME = rb"(?:`(?:[^`]|``)*`|[\w$]+)"
_DATABASE_LEVEL = re.compile(
    rb"(?:CREATE|DROP|ALTER)\s+(?:OR\s+REPLACE\s+)?(?:DATABASE|SCHEMA|USER|ROLE|SERVER)\b", re.I)
_QUALIFIED = re.compile(
    rb"(?:INSERT(?:\s+IGNORE)?(?:\s+INTO)?|REPLACE(?:\s+INTO)?|LOCK\s+TABLES?"
    rb"|(?:CREATE|DROP|ALTER)\b.*?\b(?:TABLE|VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT|SEQUENCE)"
    rb"(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|CREATE\b.*?\bTRIGGER\b.*?\bON)"
    rb"\s+(" + _NAME + rb")\s*\.", re.I | re.S)
_DEFINER = re.compile(r"DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?"
                      r"|(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[\w.$-]+)\s*@\s*"
                      r"(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[\w.%$:-]+))[ \t]*", re.I)


class HostileDumpError(Exception):
    """The dump holds what a restore must not run; the message names the line."""

    def __init__(self, line: int, reason: str, text: bytes = b"") -> None:
        quoted = text.split(b"\n", 1)[0].strip()[:_QUOTE].decode("utf-8", "replace")
        super().__init__(f"line {line}: {reason}" + (f" ({quoted})" if quoted else ""))
        self.line = line


def strip_definer(statement: str) -> str:
    """Return *statement* without its first ``DEFINER=`` clause (it then defaults to the current user).

    >>> strip_definer("CREATE DEFINER=`cib_load_1`@`localhost` TRIGGER `t` AFTER INSERT ON `x`")
    'CREATE TRIGGER `t` AFTER INSERT ON `x`'
    """
    return _DEFINER.sub("", statement, count=1)


class DumpGuard:
    """A dump's bytes in pieces (``write(data, start, end)``); each line is checked once whole.

    *emit* receives what passed, a line at a time (the load's client); lines that straddle
    two pieces are held until complete. ``DEFINER=`` clauses are dropped from what is
    emitted: loading them would need SUPER, and a trigger defined as another account runs
    with that account's rights.
    """

    def __init__(self, emit: Callable[[bytes, int, int], None] | None = None, check_inserts: bool = True,
                 observe: Callable[[bytes, int, int], None] | None = None) -> None:
        self.emit = emit
        self.check_inserts = check_inserts
        self.observe = observe  # also gets each line read whole (portability.py's lint)
        self.line = 0  # lines completed
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skipping = False  # inside an INSERT line passed over
        self._last_byte = 0
        self._state = _NORMAL
        self._comment_end = b""
        self._delimiter = b";"
        self._head: bytearray | None = bytearray()  # the statement's text so far, None once judged
        self._judged = b""  # the first word of the statement judged
        self._at_start = True
        self._in_rows = False  # without check_inserts: inside the rows of an INSERT passed over
        self._ended_at = -1  # where the last statement ended in the line being read
        self._out: tuple[bytes, int, int] | None = None  # what passed, not yet emitted

    def write(self, data: bytes, start: int, end: int) -> None:
        """Take ``data[start:end]`` as the next piece of the dump; raise HostileDumpError."""
        position = start
        while position < end:
            if self._skipping:
                newline = data.find(b"\n", position, end)
                if newline < 0:
                    self._last_byte = data[end - 1]
                    return
                self._end_skipped_line(data[newline - 1] if newline > position else self._last_byte)
                position = newline + 1
                continue
            if self._passes_over(data, position, end):
                continue
            if not self._pending and self._head is None and self._judged == b"INSERT":
                position = self._rows(data, position, end)
                if position >= end:
                    break
            newline = data.find(b"\n", position, end)
            stop = end if newline < 0 else newline + 1
            if self._pending or newline < 0:
                self._hold(data, position, stop)
                if newline >= 0:
                    self._held_line()
            else:
                self._line(data, position, stop)
            position = stop
        self._flush()

    def _emit(self, data: bytes, start: int, end: int) -> None:
        """Emit ``data[start:end]``, joined to what precedes it in the same piece: one write per piece."""
        if self._out is not None and self._out[0] is data and self._out[2] == start:
            self._out = (data, self._out[1], end)
            return
        self._flush()
        self._out = (data, start, end)

    def _flush(self) -> None:
        if self._out is not None and self.emit is not None:
            self.emit(*self._out)
        self._out = None

    def finish(self) -> None:
        """The dump ended: check its last line when it has no newline."""
        if self._pending:
            self._held_line()
        self._flush()

    def _held_line(self) -> None:
        line = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._line(line, 0, len(line))

    def _passes_over(self, data: bytes, position: int, end: int) -> bool:
        """Without check_inserts: True (and the line is skipped) when the line starting here, or
        held since the previous piece, begins a plain INSERT, or is one of its rows (mariadb-dump
        writes each row on a line of its own, starting with "("). Decided on the first bytes of
        the line, so that the verdict does not depend on where the pieces are cut."""
        if self.check_inserts or self._state != _NORMAL or self._pending_size >= _HEAD:
            return False
        if self._in_rows and not self._pending:
            if data[position] != 40:  # "(": the INSERT goes on otherwise: read the line
                self._in_rows = False
                return False
        elif not self._at_start:
            return False
        else:
            head = b"".join(self._pending) + data[position:min(end, position + _HEAD)]
            if _PLAIN_INSERT.match(head) is None:
                return False  # not one, or too few bytes yet: held with the rest of the line
            self._pending, self._pending_size = [], 0
        self._skipping = True
        self._at_start = False
        return True

    def _rows(self, data: bytes, position: int, end: int) -> int:
        """Inside an INSERT, pass whole lines of plain rows at once (one regex run, no line loop);
        return where the line-by-line reading goes on."""
        if self._state != _NORMAL:
            return position
        stop = _ROWS.match(data, position, end).end()
        last = data.rfind(b"\n", position, stop)
        if last < 0:
            return position
        self.line += data.count(b"\n", position, last + 1)
        if self.emit is not None:
            self._emit(data, position, last + 1)
        return last + 1

    def _end_skipped_line(self, last: int) -> None:
        self._skipping = False
        self.line += 1
        self._at_start = last == b";"[0] or last == b"\r"[0]
        self._in_rows = not self._at_start
        self._head, self._judged = (bytearray(), b"") if self._at_start else (None, b"INSERT")

    def _hold(self, data: bytes, start: int, stop: int) -> None:
        self._pending.append(data[start:stop])
        self._pending_size += stop - start
        insert = self.check_inserts and self._pending[0].startswith(_INSERT_HEAD)
        limit = MAX_INSERT_LINE if insert else MAX_LINE
        if self._pending_size > limit:
            raise HostileDumpError(self.line + 1, f"a line longer than {limit >> 20} MiB (not mysqldump's)",
                                   self._pending[0])

    def _line(self, data: bytes, start: int, stop: int) -> None:
        """Check one whole line (with its newline, unless the dump's last) and emit it."""
        number = self.line + 1
        if self.observe is not None:
            self.observe(data, start, stop)
        end = stop - 1 if data[stop - 1] == 10 else stop
        in_insert = (data.startswith(_INSERT_HEAD, start, end) if self._at_start
                     else self._kind() == b"INSERT")
        if not in_insert and stop - start > MAX_LINE:
            raise HostileDumpError(number, f"a line longer than {MAX_LINE >> 20} MiB outside an INSERT",
                                   data[start:start + _QUOTE])
        self._ended_at = -1
        self._lex(data, start, end, number)
        # Inside an INSERT the text is data; a statement that begins after it on the line is not.
        if (not in_insert or (self._ended_at >= 0 and data[self._ended_at:end].strip())) \
                and _NO_BACKSLASH_ESCAPES.search(data, start, end):
            raise HostileDumpError(number, "NO_BACKSLASH_ESCAPES would change how the client splits "
                                   "statements", data[start:end])
        self.line = number
        if self.emit is None:
            return
        if not in_insert and data.find(b"DEFINER", start, stop) >= 0:
            text = _DEFINER.sub("", data[start:stop].decode("utf-8", "surrogateescape"))
            rewritten = text.encode("utf-8", "surrogateescape")
            self._emit(rewritten, 0, len(rewritten))
        else:
            self._emit(data, start, stop)

    def _kind(self) -> bytes:
        """The first word of the statement being read (b"" before it)."""
        if self._head is None:
            return self._judged
        words = bytes(self._head).replace(b"*/", b" ").split(None, 1)
        return words[0].upper() if words else b""

    def _lex(self, data: bytes, position: int, end: int, number: int) -> None:
        line_start = position
        while position < end:
            state = self._state
            if state == _COMMENT:
                close = data.find(self._comment_end, position, end) if self._comment_end else -1
                stop = end if close < 0 else close + len(self._comment_end)
                if data.find(b"\\", position, stop) >= 0:
                    raise HostileDumpError(number, "a backslash in a comment (mysqldump writes none)",
                                      data[line_start:end])
                if close >= 0:
                    self._state = _NORMAL
                position = stop
                continue
            if state != _NORMAL:
                position = self._quoted(data, position, end, state)
                continue
            if self._at_start:
                position = _SPACE.match(data, position, end).end()
                if position >= end:
                    break
                if data.startswith(SANDBOX_LINE, position, end) and position == line_start \
                        and not data[position + len(SANDBOX_LINE):end].strip():
                    return
                if self._client_command(data, position, end, number, line_start):
                    return
            if self._head is not None:
                position = self._head_text(data, position, end)
            else:
                position = _RUN.match(data, position, end).end()
            if position < end:
                position = self._special(data, position, end, number, line_start)
        if self._state == _COMMENT and self._comment_end == b"\n":
            self._state = _NORMAL  # a line comment ends with its line
        if self._head is not None and self._state == _NORMAL and not self._at_start:
            self._head += b" "

    def _quoted(self, data: bytes, position: int, end: int, state: int) -> int:
        start, position = position, _INSIDE[state].match(data, position, end).end()
        if self._head is not None and state == _BTICK:
            self._head += data[start:position]
        if position >= end:
            return end
        if data[position] == 92:  # a backslash escaping the newline: the string goes on
            return end
        self._state = _NORMAL
        if self._head is not None:
            self._head += _CLOSING[state]
        return position + 1

    def _client_command(self, data: bytes, position: int, end: int, number: int, line_start: int) -> bool:
        """At a statement's start: True when the rest of the line was a DELIMITER command."""
        word = _WORD.match(data, position, end)
        if word is None:
            return False
        name = word.group().decode("ascii").lower()
        if name == "delimiter":
            value = data[word.end():end].strip().split(b" ", 1)[0] if word.end() < end else b""
            if not data[word.end():word.end() + 1].isspace() or value not in DELIMITERS:
                raise HostileDumpError(number, f"DELIMITER {value.decode('utf-8', 'replace')!r}: only "
                                  "mysqldump's ;; and ; are accepted", data[line_start:end])
            self._delimiter = value
            return True
        after = data[word.end():word.end() + 1]
        if name in CLIENT_COMMANDS and (not after or after.isspace() or after == b";"):
            reason = ("USE would switch the load to another database" if name == "use"
                      else f"'{name}' is a command of the mysql client, not SQL")
            raise HostileDumpError(number, reason, data[line_start:end])
        return False

    def _head_text(self, data: bytes, position: int, end: int) -> int:
        run = _PLAIN.match(data, position, end).end()
        if run > position:
            self._at_start = False
            self._head += data[position:run]
        if len(self._head) >= _HEAD:
            self._judge(self.line + 1, data, position)
        return run

    def _special(self, data: bytes, position: int, end: int, number: int, line_start: int) -> int:
        byte = data[position]
        if byte in _OPENING:
            self._state = _OPENING[byte]
            self._at_start = False
            if self._head is not None:
                self._head += data[position:position + 1] if byte == 96 else b"'"
            return position + 1
        if byte == 92:
            command = chr(data[position + 1]) if position + 1 < end else ""
            raise HostileDumpError(number, f"'\\{command}' is a command of the mysql client, not SQL",
                                   data[line_start:end])
        if byte == 35 or (byte == 45 and (position + 2 >= end or data[position + 2:position + 3].isspace())):
            self._state, self._comment_end = _COMMENT, b"\n"
            return position + (1 if byte == 35 else 2)
        if byte == 47:  # "/*"
            if data.startswith(b"/*!", position, end) or data.startswith(b"/*M!", position, end):
                if self._head is not None:
                    self._head += b" "
                self._at_start = False
                return _VERSION_OPENER.match(data, position, end).end()
            self._state, self._comment_end = _COMMENT, b"*/"
            return position + 2
        if byte == 59:  # ";"
            if self._delimiter == b";" or data.startswith(b";;", position, end):
                self._statement_end(number, data, line_start, position + len(self._delimiter))
                return position + len(self._delimiter)
            self._at_start = False
            return position + 1
        if byte == 45:  # "--" not followed by a space: an operator
            self._at_start = False
            if self._head is not None:
                self._head += b"--"
            return position + 2
        if self._head is not None:  # white space in the head
            self._head += b" "
        return position + 1

    def _statement_end(self, number: int, data: bytes, line_start: int, position: int) -> None:
        if self._head is not None:
            self._judge(number, data, line_start)
        self._head, self._judged = bytearray(), b""
        self._at_start = True
        self._ended_at = position

    def _judge(self, number: int, data: bytes, line_start: int) -> None:
        """Judge the statement by its first words; from then on its text is only lexed."""
        head = bytes(self._head).replace(b"*/", b" ").strip()
        self._head = None
        if not head:
            return
        first = self._judged = head.split(None, 1)[0].upper()
        shown = data[line_start:line_start + _QUOTE]
        if first not in DUMP_STATEMENTS:
            kind = first.decode("utf-8", "replace")
            raise HostileDumpError(number, f"a {kind} statement is not one a dump restores", shown)
        if _DATABASE_LEVEL.match(head):
            raise HostileDumpError(number, "a statement on a database or account: a restore writes only into "
                              "its target database", shown)
        qualified = _QUALIFIED.match(head)
        if qualified:
            raise HostileDumpError(number, f"names an object of another database "
                              f"({qualified.group(1).decode('utf-8', 'replace')}.…)", shown)
