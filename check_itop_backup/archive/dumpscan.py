"""Scan a mysqldump file as it streams past, without holding it in memory.

``DumpScanner`` receives the dump in pieces (``write(data, start, end)``, a slice of a
larger buffer, so the caller never copies) and keeps only what the verdict needs: the size,
the last few KiB (for mysqldump's ``-- Dump completed`` trailer), the names of the
``CREATE TABLE`` statements at line starts (the first ``MAX_TABLES``; the others are only
counted, as iTop has a few hundred tables), a SHA-256 computed on a helper thread
(hashlib releases the GIL, so it runs beside the decompression on another core), and the
first statement a restore must not run (sqlguard.py, INSERT lines passed over) and, on the lines
it reads, what keeps the dump from loading elsewhere (portability.py), and per table
the rows and bytes of its INSERT statements (``TableCounter``). ``findings()`` then says what is
wrong, if anything.

mysqldump escapes newlines inside string values, so ``\\nCREATE TABLE `name``` at the start of
a line is always a statement, never ticket text.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading

from check_itop_backup.archive.layout import DUMP_MEMBER
from check_itop_backup.archive.sqlguard import DumpGuard, HostileDumpError
from check_itop_backup.units import format_size

TRAILER = b"-- Dump completed"
_CREATE = b"\nCREATE TABLE `"
_MAX_NAME = 192
MAX_TABLES = 5000
_WINDOW = len(_CREATE) + _MAX_NAME + 1  # longest CREATE TABLE prefix that can straddle two pieces
_TAIL = 4096
_QUEUE_DEPTH = 4
_LONG_LINE = 4096  # stepping line by line pays off only when lines are this long on average
_LINE_CHECK = 256  # lines between two checks of that average
_INSERT = b"\nINSERT INTO `"
_INSERT_WINDOW = len(_INSERT) + _MAX_NAME + 1  # longest INSERT head that can straddle two pieces
MODULES_TABLE = "priv_module_install"  # iTop's record of its version and modules (with db_subname first)
CAPTURE_LIMIT = 1 << 20  # bytes kept of the INSERT statements of MODULES_TABLE
_SEPARATOR = re.compile(rb"\),\(")  # findall finds it 1.5x faster than bytes.count (a literal prefix)


class _BackgroundHash:
    """SHA-256 of the pieces given to ``update``, computed on a daemon thread."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._pieces: queue.Queue[memoryview | None] = queue.Queue(_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._run, name="dump-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            piece = self._pieces.get()
            if piece is None:
                return
            self._hash.update(piece)

    def update(self, data: bytes, start: int, end: int) -> None:
        self._pieces.put(memoryview(data)[start:end])

    def hexdigest(self) -> str:
        """Wait for the pieces queued so far and return the digest."""
        self.stop()
        self._thread.join()
        return self._hash.hexdigest()

    def stop(self) -> None:
        """Let the thread end after the queued pieces (also when the scan is abandoned)."""
        self._pieces.put(None)


class TableCounter:
    """Per table, the rows and bytes of its INSERT statements, from the dump in pieces.

    mysqldump writes a table's rows as extended INSERTs, one statement per line, rows
    separated by ``),(``; mariadb-dump writes the head ``INSERT INTO `t` VALUES`` on a line
    and then one row per line. Neither writes a raw newline inside a value, so a statement
    ends at the first line ending with ``;``, and its rows are its ``),(`` separators (or its
    row lines). A text value that itself holds ``),(`` counts one row more: the counts
    compare archives of one instance with each other, not with ``COUNT(*)``.

    With *rows* off (a runner's archive, whose manifest has them) only the bytes are counted:
    following each statement to its end (memchr) costs a fifth of counting its rows, and less
    than searching the next statement's head through its rows. The statements of iTop's
    ``priv_module_install`` (any ``db_subname`` prefix) are kept, up to ``CAPTURE_LIMIT``.
    ``sizes`` counts each statement's bytes, newline included.

    >>> counter = TableCounter()
    >>> dump = (b"--\\nINSERT INTO `a` VALUES (1,'x'),(2,'');\\n"
    ...         b"INSERT INTO `b` VALUES\\n(1),\\n(2),\\n(3);\\n")
    >>> for at in range(0, len(dump), 7):
    ...     counter.write(dump, at, min(at + 7, len(dump)))
    >>> counter.rows, counter.sizes
    ({'a': 2, 'b': 3}, {'a': 39, 'b': 38})
    """

    def __init__(self, rows: bool = True) -> None:
        self.rows: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self.captured: dict[str, bytearray] = {}
        self._count_rows = rows
        self._open: str | None = None  # the table whose statement the last piece ended inside
        self._in_rows = False  # that statement is past its head line (mariadb-dump's rows)
        self._carry = b""  # the last bytes of the stream so far

    def write(self, data: bytes, start: int, end: int) -> None:
        """Take ``data[start:end]`` as the next piece of the dump."""
        if end <= start:
            return
        position = start
        if self._open is not None:
            position = self._statement(data, start, end, start)
        elif self._carry:
            position = self._straddling_head(data, start, end)
        while self._open is None:
            head = data.find(_INSERT, position, end)
            if head < 0:
                break
            name_start = head + len(_INSERT)
            name_end = data.find(b"`", name_start, min(end, name_start + _MAX_NAME + 1))
            if name_end < 0:
                if end - name_start > _MAX_NAME:  # not a name mysqldump writes: passed over
                    position = name_start
                    continue
                break  # the head goes on in the next piece
            position = self._begin(data[name_start:name_end], data, head + 1, name_end, end)
        self._carry = data[end - _INSERT_WINDOW:end] if end - start >= _INSERT_WINDOW \
            else (self._carry + data[start:end])[-_INSERT_WINDOW:]

    def _straddling_head(self, data: bytes, start: int, end: int) -> int:
        """Begin the statement whose head started in the previous piece; return where to go on."""
        carried = len(self._carry)
        window = self._carry + data[start:min(end, start + _INSERT_WINDOW)]
        head = window.find(_INSERT)
        while 0 <= head < carried:
            name_start = head + len(_INSERT)
            name_end = window.find(b"`", name_start, name_start + _MAX_NAME + 1)
            if name_end >= carried:  # its name was not seen whole in the previous piece
                self._opened(window[name_start:name_end].decode("utf-8", "replace"))
                before = window[head + 1:carried]
                self._account(before, 0, len(before))
                position = start + name_end - carried
                self._account(data, start, position)
                return self._statement(data, position, end, start)
            head = window.find(_INSERT, head + 1)
        return start

    def _begin(self, name: bytes, data: bytes, start: int, name_end: int, end: int) -> int:
        self._opened(name.decode("utf-8", "replace"))
        self._account(data, start, name_end)
        return self._statement(data, name_end, end, -1)

    def _opened(self, table: str) -> None:
        """A new INSERT statement of *table*: one row so far."""
        self._open, self._in_rows = table, False
        if self._count_rows:
            self.rows[table] = self.rows.get(table, 0) + 1
        self.sizes.setdefault(table, 0)
        if table.endswith(MODULES_TABLE):
            self.captured.setdefault(table, bytearray())

    def _keep(self, data: bytes, start: int, stop: int) -> None:
        captured = self.captured.get(self._open)
        if captured is not None and len(captured) < CAPTURE_LIMIT:
            captured += data[start:min(stop, start + CAPTURE_LIMIT - len(captured))]

    def _account(self, data: bytes, start: int, stop: int) -> None:
        if stop > start:
            self.sizes[self._open] += stop - start
            self._keep(data, start, stop)

    def _statement(self, data: bytes, position: int, end: int, piece_start: int) -> int:
        """Go on with the open statement from *position* (*piece_start* when it goes on from the
        previous piece); return where it ended (its newline) or *end*."""
        table = self._open
        boundary = position == piece_start
        previous = (self._carry[-1:] or b"\0")[0] if boundary else data[position - 1]
        if not self._in_rows:
            line_end = data.find(b"\n", position, end)
            if self._count_rows:
                self.rows[table] += len(_SEPARATOR.findall(data, position, end if line_end < 0 else line_end))
                if boundary:
                    self.rows[table] += self._straddling_separators(data, position, end)
            if line_end < 0:
                self._account(data, position, end)
                return end
            if (data[line_end - 1] if line_end > position else previous) == 59:  # ";": mysqldump's line
                self._account(data, position, line_end + 1)
                self._open = None
                return line_end
            self._in_rows = True  # mariadb-dump: the rows follow, one per line
            self._account(data, position, line_end + 1)
            position, previous = line_end + 1, 10
        semicolon = position - 1 if previous == 59 and data.startswith(b"\n", position, end) \
            else self._row_lines(data, position, end)
        if semicolon < 0:
            self._account(data, position, end)
            return end
        self._account(data, position, semicolon + 2)
        self._open = None
        return semicolon + 1

    def _row_lines(self, data: bytes, position: int, end: int) -> int:
        """Return where the ";" ending mariadb-dump's statement is in ``data[position:end]`` (-1:
        not there), counting its row lines on the way: a memchr per row, where searching the
        two bytes ``;\n`` went five times slower than the line ends, on every row."""
        line_end = data.find(b"\n", position, end)
        while line_end >= 0:
            if line_end > position and data[line_end - 1] == 59:
                return line_end - 1
            if self._count_rows:
                self.rows[self._open] += 1
            line_end = data.find(b"\n", line_end + 1, end)
        return -1

    def _straddling_separators(self, data: bytes, start: int, end: int) -> int:
        """The ``),(`` separators begun in the previous piece and ended in this one."""
        window = self._carry[-2:] + data[start:min(end, start + 2)]
        carried = min(2, len(self._carry))
        return sum(window.startswith(b"),(", at) for at in range(carried) if at + 3 > carried)


class DumpScanner:
    """What a streaming pass learns about ``itop-dump.sql``. Call ``close()`` when done.

    *count_tables* counts each table's rows (``counter``; its bytes are always counted, and iTop's
    ``priv_module_install`` statements kept). The SHA-256 runs on a helper thread when asked for.
    """

    def __init__(self, with_sha256: bool = True, count_tables: bool = True) -> None:
        self.size = 0
        self.tables: dict[str, None] = {}  # ordered set, at most MAX_TABLES
        self.more_tables = 0  # CREATE TABLE statements beyond those
        self._tail = b""
        self.counter = TableCounter(rows=count_tables)
        self._hash = _BackgroundHash() if with_sha256 else None
        self.sha256: str | None = None
        from check_itop_backup.archive.portability import PortabilityLint  # not on the probe's start-up path

        self.portability = PortabilityLint()
        self._guard: DumpGuard | None = DumpGuard(check_inserts=False, observe=self.portability.line)
        self.hostile: str | None = None  # why a restore must not run this dump

    def write(self, data: bytes, start: int, end: int) -> None:
        """Take ``data[start:end]`` as the next piece of the dump."""
        if end <= start:
            return
        if self._hash is not None:
            self._hash.update(data, start, end)
        self.counter.write(data, start, end)
        if self._tail:
            self._scan_boundary(data, start, end)
        self._scan_lines(data, start, end)
        if self._guard is not None:
            self._check(self._guard.write, data, start, end)
        self.size += end - start
        piece = data[max(start, end - _TAIL):end]
        self._tail = piece if len(piece) == _TAIL else (self._tail + piece)[-_TAIL:]

    def _check(self, step, *piece: object) -> None:
        try:
            step(*piece)
        except HostileDumpError as error:
            self.hostile, self._guard = str(error), None

    def close(self) -> None:
        """Finish the hash (when computed) and the check of the last line. Safe to call twice."""
        if self._guard is not None:
            self._check(self._guard.finish)
            self._guard = None
        if self._hash is not None:
            self.sha256 = self._hash.hexdigest()
            self._hash = None

    def abandon(self) -> None:
        """Stop the helper thread without waiting for a digest."""
        if self._hash is not None:
            self._hash.stop()
            self._hash = None

    def _scan_lines(self, data: bytes, start: int, end: int) -> None:
        # mysqldump --opt writes rows as extended INSERTs of up to 1 MB per line: stepping from
        # newline to newline (memchr) is several times faster than searching the statement, but
        # only while lines are long; with short ones, search instead.
        position = data.find(b"\n", start, end)
        lines = 0
        while position >= 0:
            lines += 1
            if lines % _LINE_CHECK == 0 and position - start < lines * _LONG_LINE:
                self._scan(data, position, end)
                return
            self._statement_at(data, position, end)
            position = data.find(b"\n", position + 1, end)

    def _scan(self, data: bytes, start: int, end: int, straddling: int = -1) -> None:
        position = data.find(_CREATE, start, end)
        while position >= 0:
            self._statement_at(data, position, end, straddling)
            position = data.find(_CREATE, position + len(_CREATE), end)

    def _statement_at(self, data: bytes, position: int, end: int, straddling: int = -1) -> None:
        # With straddling >= 0, keep the statement only if it begins before that offset and ends after it.
        if not data.startswith(_CREATE, position, end):
            return
        name_start = position + len(_CREATE)
        name_end = data.find(b"`", name_start, min(end, name_start + _MAX_NAME + 1))
        if name_end > 0 and (straddling < 0 or position < straddling <= name_end):
            name = data[name_start:name_end].decode("utf-8", "replace")
            if len(self.tables) < MAX_TABLES or name in self.tables:
                self.tables[name] = None
            else:
                self.more_tables += 1

    @property
    def table_count(self) -> int:
        """The tables found: those named in ``tables`` and the statements beyond them."""
        return len(self.tables) + self.more_tables

    def _scan_boundary(self, data: bytes, start: int, end: int) -> None:
        carried = self._tail[-_WINDOW:]
        window = carried + data[start:min(end, start + _WINDOW)]
        self._scan(window, 0, len(window), straddling=len(carried))

    def has_trailer(self) -> bool:
        """True when the last non-blank line is mysqldump's completion comment."""
        last_line = self._tail.rstrip().rsplit(b"\n", 1)[-1]
        return last_line.startswith(TRAILER)

    def findings(self) -> str | None:
        """Return the first reason the dump is unusable, or None when it looks whole."""
        name = DUMP_MEMBER
        if self.size == 0:
            return f"{name} is empty"
        if self.hostile:
            return f"{name} holds what a restore must not run, {self.hostile}"
        if not self.has_trailer():
            return (f"{name} ends without the mysqldump completion trailer: "
                    f"dump truncated at {format_size(self.size)}")
        if not self.tables:
            return f"{name} contains no CREATE TABLE statement"
        return None
