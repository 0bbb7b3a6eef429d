"""Database passwords: where they are read from, and how they reach mysqldump unseen.

A password comes from a file (its first line), an environment variable of ours, a MySQL
option file (``password`` in ``[client]`` or ``[mysqldump]``) or iTop's config. It reaches
mysqldump through a pipe read as ``--defaults-extra-file=/dev/fd/N`` (borgmatic's
technique): never on a command line, never in any process's environment, never on disk.

>>> quote_option_value('a"b\\\\c#d')
'"a\\\\"b\\\\\\\\c#d"'
>>> parse_option_value(quote_option_value('a"b\\\\c#d \\'x'))
'a"b\\\\c#d \\'x'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

PASSWORD_ENV = "ITOP_BACKUP_DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
OPTION_GROUPS = ("client", "mysqldump", "mariadb-dump")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}
_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


class CredentialsError(ValueError):
    """A password source that cannot be read."""


def read_password_file(path: str) -> str:
    """Return the first line of *path* without its line ending (an empty file: empty password)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError as error:
        raise CredentialsError(f"cannot read password file {path}: {error.strerror}") from None


def read_option_file_password(path: str) -> str | None:
    """Return the ``password`` a MySQL option file gives mysqldump, or None when it has none."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise CredentialsError(f"cannot read option file {path}: {error.strerror}") from None
    password, group = None, ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip().lower()
        elif group in OPTION_GROUPS and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            if key.strip().replace("_", "-") == "password":
                password = parse_option_value(value)
    return password


def parse_option_value(raw: str) -> str:
    """Return an option-file value as MySQL reads it: trimmed, unquoted, escapes applied."""
    value = raw.strip()
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        value = value[1:-1]
    else:
        value = value.split("#", 1)[0].rstrip()
    out, index = [], 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            index += 1
            out.append(_ESCAPES.get(value[index], "\\" + value[index]))
        else:
            out.append(char)
        index += 1
    return "".join(out)


def quote_option_value(value: str) -> str:
    """Return *value* double-quoted and escaped for a MySQL option file."""
    return '"' + "".join(_QUOTED.get(char, char) for char in value) + '"'


@contextmanager
def defaults_file_pipe(password: str) -> Iterator[tuple[int, str]]:
    """Yield ``(fd, option)``: a pipe holding ``[client] password=…`` and the argument naming it.

    Pass *fd* in ``pass_fds`` and *option* as the program's first argument; the pipe is
    closed when the block ends.
    """
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "w", encoding="utf-8") as writer:
            writer.write(f"[client]\npassword={quote_option_value(password)}\n")
        yield read_fd, f"--defaults-extra-file=/dev/fd/{read_fd}"
    finally:
        os.close(read_fd)
