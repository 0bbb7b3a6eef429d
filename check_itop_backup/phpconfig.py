"""Read iTop's ``config-itop.php`` without PHP.

iTop writes its configuration as PHP assignments of array literals (``$MySettings``,
``$MyModuleSettings``, ``$MyModules``). This module parses exactly that subset: strings
in single or double quotes, numbers, ``true``/``false``/``null``, ``array(...)`` and
``[...]`` with or without keys, and PHP comments. Anything else is a ``PhpConfigError``
naming the line, so a broken config gives one clear message instead of wrong values.

>>> text = '''<?php
... $MySettings = array(
...     // a comment
...     'db_host' => '127.0.0.1:3306', 'db_name' => "itop", 'access_mode' => 3,
...     'csv' => array (), 'log' => true, # another comment
... );
... $MyModuleSettings = array('itop-backup' => array('week_days' => 'monday', 'time' => '23:30'));
... ?>'''
>>> config = parse_php_config(text)
>>> config["MySettings"]["db_name"], config["MySettings"]["access_mode"], config["MySettings"]["log"]
('itop', 3, True)
>>> config["MyModuleSettings"]["itop-backup"]["time"]
'23:30'
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<open_tag><\?php|\?>)
  | (?P<variable>\$[A-Za-z_]\w*)
  | (?P<single>'(?:[^'\\]|\\.)*')
  | (?P<double>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<arrow>=>)
  | (?P<punct>[=;,()\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$", "0": "\0"}


class PhpConfigError(ValueError):
    """The file is not the PHP array syntax iTop writes."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """Return (kind, text, offset) tuples; offsets become line numbers only for errors."""
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            line = text.count("\n", 0, position) + 1
            raise PhpConfigError(f"line {line}: unexpected {text[position:position + 20]!r}")
        kind = match.lastgroup
        if kind not in ("space", "comment", "open_tag"):
            tokens.append((kind, match.group(), position))
        position = match.end()
    return tokens


def _unquote(kind: str, raw: str) -> str:
    body = raw[1:-1]
    if kind == "single":
        return re.sub(r"\\([\\'])", r"\1", body)
    return re.sub(r"\\(.)", lambda m: _DOUBLE_ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]], text: str) -> None:
        self.tokens, self.index, self.text = tokens, 0, text

    def where(self, offset: int) -> str:
        return f"line {self.text.count(chr(10), 0, offset) + 1}" if offset >= 0 else "end of file"

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "", -1)

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token[0] == "end" or (expected is not None and token[1] != expected):
            wanted = repr(expected) if expected else "a value"
            raise PhpConfigError(
                f"{self.where(token[2])}: expected {wanted}, found {token[1] or 'nothing'!r}")
        self.index += 1
        return token

    def statements(self) -> dict[str, Any]:
        variables = {}
        while self.peek()[0] != "end":
            kind, name, line = self.take()
            if kind != "variable":
                raise PhpConfigError(f"{self.where(line)}: expected an assignment, found {name!r}")
            self.take("=")
            variables[name[1:]] = self.value()
            self.take(";")
        return variables

    def value(self) -> Any:
        kind, raw, line = self.take()
        if kind in ("single", "double"):
            return _unquote(kind, raw)
        if kind == "number":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw.lower()]
        if kind == "word" and raw.lower() == "array":
            self.take("(")
            return self.array(")")
        if raw == "[":
            return self.array("]")
        raise PhpConfigError(f"{self.where(line)}: unsupported value {raw!r}")

    def array(self, closing: str) -> dict[Any, Any]:
        items: dict[Any, Any] = {}
        next_key = 0
        while self.peek()[1] != closing:
            first = self.value()
            if self.peek()[0] == "arrow":
                self.take()
                items[first] = self.value()
                if isinstance(first, int):
                    next_key = max(next_key, first + 1)
            else:
                items[next_key] = first
                next_key += 1
            if self.peek()[1] != closing:
                self.take(",")
        self.take(closing)
        return items


def parse_php_config(text: str) -> dict[str, Any]:
    """Return the variables assigned in an iTop config file, by name without ``$``."""
    return _Parser(_tokens(text), text).statements()


def load_php_config(path: str) -> dict[str, Any]:
    """Read and parse the iTop config at *path*; raise PhpConfigError naming the file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        raise PhpConfigError(f"cannot read iTop config {path}: {error.strerror}") from None
    try:
        return parse_php_config(text)
    except PhpConfigError as error:
        raise PhpConfigError(f"cannot parse iTop config {path}: {error}") from None
