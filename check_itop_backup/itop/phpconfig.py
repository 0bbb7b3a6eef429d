"""Read iTop's ``config-itop.php`` without PHP.

iTop writes its configuration as PHP assignments of array literals (``$MySettings``,
``$MyModuleSettings``, ``$MyModules``). This module parses exactly that subset: strings
in single or double quotes, numbers, ``true``/``false``/``null``, ``array(...)`` and
``[...]`` with or without keys, and PHP comments. Anything else is a ``PhpConfigError``
naming the line, so a broken config gives one clear message instead of wrong values.
Arrays nest at most ``MAX_DEPTH`` deep (iTop's own go three deep) and the file is read
with a size limit (textfile.py): no input makes the parser recurse or read without end.

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

import math
import re

from check_itop_backup.itop.textfile import read_text

_TOKENS = r"""
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
    """  # compiled on first parse (re caches it): the probe imports this module for the accessors
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$", "0": "\0"}
_INT_DIGITS = 18  # longer integers overflow PHP's int: PHP reads them as floats, and so do we
MAX_DEPTH = 32


class PhpConfigError(ValueError):
    """The file is not the PHP array syntax iTop writes."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """Return (kind, text, offset) tuples; offsets become line numbers only for errors."""
    pattern = re.compile(_TOKENS, re.VERBOSE | re.DOTALL)
    tokens, position = [], 0
    while position < len(text):
        match = pattern.match(text, position)
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
        self.depth = 0

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

    def statements(self) -> dict[str, object]:
        variables = {}
        while self.peek()[0] != "end":
            kind, name, line = self.take()
            if kind != "variable":
                raise PhpConfigError(f"{self.where(line)}: expected an assignment, found {name!r}")
            self.take("=")
            variables[name[1:]] = self.value()
            self.take(";")
        return variables

    def value(self) -> object:
        kind, raw, line = self.take()
        if kind in ("single", "double"):
            return _unquote(kind, raw)
        if kind == "number":
            return float(raw) if "." in raw or len(raw.lstrip("-")) > _INT_DIGITS else int(raw)
        if kind == "word" and raw.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw.lower()]
        if kind == "word" and raw.lower() == "array":
            self.take("(")
            return self.array(")", line)
        if raw == "[":
            return self.array("]", line)
        raise PhpConfigError(f"{self.where(line)}: unsupported value {raw[:20]!r}")

    def array(self, closing: str, line: int) -> dict[object, object]:
        if self.depth >= MAX_DEPTH:
            raise PhpConfigError(f"{self.where(line)}: arrays nested more than {MAX_DEPTH} deep")
        self.depth += 1
        items: dict[object, object] = {}
        next_key = 0
        while self.peek()[1] != closing:
            offset = self.peek()[2]
            first = self.value()
            if self.peek()[0] == "arrow":
                self.take()
                first = self.key(first, offset)
                items[first] = self.value()
                if isinstance(first, int):
                    next_key = max(next_key, first + 1)
            else:
                items[next_key] = first
                next_key += 1
            if self.peek()[1] != closing:
                self.take(",")
        self.take(closing)
        self.depth -= 1
        return items

    def key(self, value: object, offset: int) -> int | str:
        """The array key PHP makes of *value*: null is "", booleans and floats become ints."""
        if value is None:
            return ""
        if isinstance(value, float) and math.isfinite(value):
            return int(value)
        if isinstance(value, (bool, int, str)):
            return int(value) if isinstance(value, bool) else value
        what = "an array" if isinstance(value, dict) else repr(value)
        raise PhpConfigError(f"{self.where(offset)}: {what} cannot be an array key")


def parse_php_config(text: str) -> dict[str, object]:
    """Return the variables assigned in an iTop config file, by name without ``$``."""
    return _Parser(_tokens(text), text).statements()


def load_php_config(path: str) -> dict[str, object]:
    """Read and parse the iTop config at *path*; raise PhpConfigError naming the file."""
    try:
        text = read_text(path, errors="replace")
    except OSError as error:
        raise PhpConfigError(f"cannot read iTop config {path}: {error.strerror}") from None
    try:
        return parse_php_config(text)
    except PhpConfigError as error:
        raise PhpConfigError(f"cannot parse iTop config {path}: {error}") from None


def setting_array(container: dict[object, object], key: str) -> dict[object, object]:
    """Return the array ``container[key]`` ({} when unset); raise PhpConfigError when it is
    something else (a string where iTop expects an array)."""
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PhpConfigError(f"setting '{key}' is {_kind(value)}, not an array")
    return value


def setting_text(container: dict[object, object], key: str, default: str = "") -> str:
    """Return ``container[key]`` as a string (numbers as PHP prints them; *default* when unset
    or empty); raise PhpConfigError for an array."""
    value = container.get(key)
    if value is None or value == "" or value is False:
        return default
    if isinstance(value, dict):
        raise PhpConfigError(f"setting '{key}' is an array, not a string")
    return "1" if value is True else str(value)


def setting_flag(container: dict[object, object], key: str) -> bool:
    """Return ``container[key]`` as PHP tests it: false for unset, ``false``, ``0``, ``'0'``,
    ``''`` and an empty array, true otherwise.

    >>> [setting_flag({"x": value}, "x") for value in ("0", "", 0, "1", True, "false")]
    [False, False, False, True, True, True]
    """
    value = container.get(key)
    return not (value is None or value is False or value in (0, "0", "") or value == {})


def setting_int(container: dict[object, object], key: str, default: int) -> int:
    """Return ``container[key]`` as a whole number (*default* when unset); raise PhpConfigError
    for anything else, e.g. ``'abc'``."""
    value = container.get(key)
    if value is None or value == "":
        return default
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"-?\d{1,18}", text):
        raise PhpConfigError(f"setting '{key}' is not a whole number: {_kind(value)}")
    return int(text)


def _kind(value: object) -> str:
    return "an array" if isinstance(value, dict) else repr(value)[:40]
