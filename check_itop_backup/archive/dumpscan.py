"""Scan a mysqldump file as it streams past, without holding it in memory.

``DumpScanner`` receives the dump in pieces (``write(data, start, end)``, a slice of a
larger buffer, so the caller never copies) and keeps only what the verdict needs: the size,
the last few KiB (for mysqldump's ``-- Dump completed`` trailer), the names of the
``CREATE TABLE`` statements at line starts (the first ``MAX_TABLES``; the others are only
counted, as iTop has a few hundred tables), a SHA-256 computed on a helper thread
(hashlib releases the GIL, so it runs beside the decompression on another core), and the
first statement a restore must not run (sqlguard.py, INSERT lines passed over).
``findings()`` then says what is wrong, if anything.

mysqldump escapes newlines inside string values, so ``\\nCREATE TABLE `name``` at the start of
a line is always a statement, never ticket text.
"""

from __future__ import annotations

import hashlib
import queue
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


class DumpScanner:
    """What a streaming pass learns about ``itop-dump.sql``. Call ``close()`` when done."""

    def __init__(self, with_sha256: bool = True) -> None:
        self.size = 0
        self.tables: dict[str, None] = {}  # ordered set, at most MAX_TABLES
        self.more_tables = 0  # CREATE TABLE statements beyond those
        self._tail = b""
        self._hash = _BackgroundHash() if with_sha256 else None
        self.sha256: str | None = None
        self._guard: DumpGuard | None = DumpGuard(check_inserts=False)
        self.hostile: str | None = None  # why a restore must not run this dump

    def write(self, data: bytes, start: int, end: int) -> None:
        """Take ``data[start:end]`` as the next piece of the dump."""
        if end <= start:
            return
        if self._hash is not None:
            self._hash.update(data, start, end)
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
