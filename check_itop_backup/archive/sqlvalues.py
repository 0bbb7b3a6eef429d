"""The rows of an ``INSERT INTO `t` VALUES (…),(…);`` statement as mysqldump writes them.

Values are quoted strings (backslash escapes, as mysqldump writes them), ``NULL`` or bare
numbers. Used on small statements only (iTop's ``priv_module_install``, kept by dumpscan.py).

>>> insert_rows(b"INSERT INTO `m` VALUES (1,'iTop','3.2.0-dev-svn',NULL,'a\\\\'b\\\\nc',0),"
...             b"\\n(2,'x','1',NULL,'',1);\\n")
[('1', 'iTop', '3.2.0-dev-svn', None, "a'b\\nc", '0'), ('2', 'x', '1', None, '', '1')]
"""

from __future__ import annotations

import re

_VALUE = re.compile(rb"\s*(?:'((?:[^'\\]|\\.|'')*)'|(NULL)|([^,()'\s]+))\s*([,)])", re.S)
_ESCAPES = {b"0": b"\0", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"Z": b"\x1a", b"b": b"\b"}
_ESCAPED = re.compile(rb"\\(.)|''", re.S)


def _unescape(text: bytes) -> str:
    def replace(match: re.Match) -> bytes:
        if match.group(0) == b"''":
            return b"'"
        return _ESCAPES.get(match.group(1), match.group(1))

    return _ESCAPED.sub(replace, text).decode("utf-8", "replace")


def insert_rows(statement: bytes) -> list[tuple[str | None, ...]]:
    """Return the rows of the INSERT statement(s) in *statement*: each a tuple of texts (None for
    NULL). Text that is not a row (the head, a statement cut short) is passed over."""
    rows: list[tuple[str | None, ...]] = []
    position = statement.find(b"(")
    while position >= 0:
        values: list[str | None] = []
        at = position + 1
        while True:
            match = _VALUE.match(statement, at)
            if match is None:
                values = []
                break
            quoted, null, bare, closer = match.groups()
            values.append(_unescape(quoted) if quoted is not None else None if null else bare.decode())
            at = match.end()
            if closer == b")":
                break
        if values:
            rows.append(tuple(values))
        position = statement.find(b"(", at)
    return rows
