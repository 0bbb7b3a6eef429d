"""Database passwords: where they are read from, and how they reach mysqldump unseen.

A password comes from a file (its first line), an environment variable of ours, a MySQL
option file (``password`` in ``[client]`` or ``[mysqldump]``) or iTop's config. It reaches
mysqldump through a pipe read as ``--defaults-extra-file=/dev/fd/N`` (borgmatic's
technique): never on a command line, never in any process's environment, never on disk.

The pipe is filled before the client starts, so its content must fit in the pipe buffer:
a password is refused above ``MAX_PASSWORD_BYTES``. That is no real limit (MariaDB and
MySQL read option-file lines into a 4 KiB buffer, so a longer password could not work
anyway) and, escaped, it stays below ``PIPE_BUF`` (4 KiB, the smallest pipe Linux makes),
so the write can never block.

>>> quote_option_value('a"b\\\\c#d')
'"a\\\\"b\\\\\\\\c#d"'
>>> parse_option_value(quote_option_value('a"b\\\\c#d \\'x'))
'a"b\\\\c#d \\'x'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from check_itop_backup.itop.textfile import read_text

OPTION_GROUPS = ("client", "mysqldump", "mariadb-dump")
MAX_PASSWORD_BYTES = 1024

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'", "\\": "\\"}
_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


class CredentialsError(ValueError):
    """A password source that cannot be read."""


def read_password_file(path: str) -> str:
    """Return the first line of *path* without its line ending (an empty file: empty password)."""
    return check_password(_read(path, "password file").split("\n", 1)[0].rstrip("\r"))


def read_option_file_password(path: str) -> str | None:
    """Return the ``password`` a MySQL option file gives mysqldump, or None when it has none."""
    password = parse_option_file_password(_read(path, "option file"))
    return None if password is None else check_password(password)


def _read(path: str, what: str) -> str:
    try:
        return read_text(path)
    except OSError as error:
        raise CredentialsError(f"cannot read {what} {path}: {error.strerror}") from None


def check_password(password: str) -> str:
    """Return *password* when it can go through the pipe; raise CredentialsError saying why not."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise CredentialsError("the database password is not valid UTF-8") from None
    if size > MAX_PASSWORD_BYTES:
        raise CredentialsError(f"the database password is {size} bytes long; more than "
                               f"{MAX_PASSWORD_BYTES} cannot be passed to the mysql client")
    if "\0" in password:
        raise CredentialsError("the database password contains a NUL character")
    return password


def parse_option_file_password(text: str) -> str | None:
    """Return the ``password`` of the text of a MySQL option file, or None when it has none.

    >>> parse_option_file_password("[mysql]\\npassword=no\\n[client]\\nuser=x\\npassword = 'se cret'\\n")
    'se cret'
    """
    password, group = None, ""
    for raw in text.splitlines():
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
    content = f"[client]\npassword={quote_option_value(check_password(password))}\n".encode()
    read_fd, write_fd = os.pipe()
    try:
        try:
            os.write(write_fd, content)  # <= PIPE_BUF into an empty pipe: one write, never blocks
        finally:
            os.close(write_fd)
        yield read_fd, f"--defaults-extra-file=/dev/fd/{read_fd}"
    finally:
        os.close(read_fd)
