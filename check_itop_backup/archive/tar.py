"""Read tar headers the way iTop's restore does, and say which members are unsafe.

A parser of our own (not ``tarfile``) so that the verifier can walk a decompressed stream
in one pass without seeking and tell exactly what is wrong with a header. It reads the
dialects: old-GNU (magic ``ustar  \\0``), POSIX ustar (``ustar\\0``
``00``, whose ``prefix`` field it joins), v7; octal numbers ended by NUL or space or filling
the field (iTop's 12-digit sizes from 8 to 64 GiB), and GNU base-256 numbers, which it flags
because iTop's reader misreads them. GNU long names (``L``/``K``) and PAX records are parsed
by the caller from the member data with ``pax_records``.

>>> parse_header(bytes(512), 0) is None
True
>>> parse_number(b"100000000000"), parse_number(b"00005336565\\0")
((8589934592, False), (1424757, False))
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

BLOCK = 512
PATH_MAX = 4096  # longest path the kernel takes (Linux): a longer member name cannot be extracted
MAX_LINKS = 65536  # link members one archive may hold (each costs the walk a set entry)
REGULAR_TYPES = (b"0", b"\0", b"7")
# Types that carry no data blocks whatever their size field says (as GNU tar and tarfile read them).
DATALESS_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")
_SPECIAL_FILES = {b"3": "a character device", b"4": "a block device", b"6": "a FIFO"}
_POSIX_MAGIC = b"ustar\x0000"
_LINK_TYPES = (b"1", b"2")


class TarFormatError(Exception):
    """A header block that is not a tar header; the message says why."""


@dataclass(frozen=True)
class TarHeader:
    """One parsed header block. *type* is the one-byte type flag (``b"\\0"`` read as ``b"0"``)."""

    name: str
    linkname: str
    size: int
    type: bytes
    base256_size: bool

    @property
    def has_data(self) -> bool:
        """True when data blocks follow this header."""
        return self.type not in DATALESS_TYPES


def parse_number(field: bytes) -> tuple[int, bool]:
    """Return ``(value, is_base256)`` for a tar numeric field.

    Octal digits may be padded with spaces or NULs and may fill the whole field with no
    terminator. Raise TarFormatError for anything else.
    """
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big"), True
    text = field.split(b"\0", 1)[0].strip(b" ")
    if text.translate(None, b"01234567"):  # int() would take a sign, "0o" or "_"
        raise TarFormatError(f"numeric field {field!r} is not octal")
    return int(text or b"0", 8), False


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def parse_header(block: bytes, offset: int) -> TarHeader | None:
    """Return the header in the 512-byte *block* found at stream *offset*, or None for a zero block.

    Raise TarFormatError when the checksum does not match or a numeric field is not a number.
    """
    if not any(block):
        return None
    stored, _ = parse_number(block[148:156])
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = unsigned - sum(256 for byte in block[:148] + block[156:] if byte > 127)
    if stored not in (unsigned, signed):
        raise TarFormatError(f"tar header at offset {offset} has a bad checksum")
    size, base256 = parse_number(block[124:136])
    name = _text(block[0:100])
    if block[257:265] == _POSIX_MAGIC and block[345] != 0:
        name = _text(block[345:500]) + "/" + name
    kind = block[156:157]
    return TarHeader(name=name, linkname=_text(block[157:257]), size=size,
                     type=b"0" if kind == b"\0" else kind, base256_size=base256)


def pax_records(data: bytes) -> dict[str, str]:
    """Return the ``key=value`` records of a PAX extended header's data.

    >>> pax_records(b"20 path=a/long/name\\n12 size=42\\n")
    {'path': 'a/long/name', 'size': '42'}
    """
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        space = data.find(b" ", position)
        if space < 0:
            raise TarFormatError("PAX header record without a length")
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError("PAX header record with a bad length") from None
        record = data[space + 1:position + length].rstrip(b"\n")
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += max(length, 1)
    return records


def pax_size(value: str) -> int:
    """Return the ``size`` record of a PAX header as a number; TarFormatError unless it is one.

    >>> pax_size("1536")
    1536
    """
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        raise TarFormatError(f"PAX extended header has an invalid size {value[:40]!r}")
    return int(value)


def printable(name: str) -> str:
    """Return *name* fit for a one-line message: as it is, or quoted with escapes when it holds
    a newline or another unprintable character.

    >>> printable("itop-dump.sql"), printable("x\\nOK: all fine")
    ('itop-dump.sql', "'x\\\\nOK: all fine'")
    """
    return name if name.isprintable() else repr(name)


def name_list(names: list[str], most: int = 20) -> str:
    """Return *names* as one line for a message: printable, the first *most* of them and a count.

    >>> name_list(["a", "b", "c"], most=2)
    'a, b and 1 more'
    """
    shown = ", ".join(map(printable, names[:most]))
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def root_name(name: str) -> str:
    """Return *name* as it lands under the restore directory (``./`` and trailing ``/`` dropped).

    >>> root_name("./itop-dump.sql"), root_name("production-modules/")
    ('itop-dump.sql', 'production-modules')
    """
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def unsafe_reason(name: str, kind: bytes, linkname: str) -> str | None:
    """Return why extracting this member could write outside the target, or None when it is safe.

    >>> unsafe_reason("../etc/cron.d/x", b"0", "")
    "member '../etc/cron.d/x' climbs out of the target directory with '..'"
    >>> unsafe_reason("mods/link", b"2", "../../etc/passwd")
    "symlink member 'mods/link' points outside the archive (-> ../../etc/passwd)"
    >>> unsafe_reason("mods/link", b"2", "../other") is None
    True
    """
    for text in (name, linkname):  # (a str of up to PATH_MAX / 4 characters cannot be longer)
        if len(text) > PATH_MAX // 4 and len(text.encode("utf-8", "surrogateescape")) > PATH_MAX:
            return f"member {name[:64]!r}... has a name or link target longer than {PATH_MAX} bytes"
    if name.startswith("/"):
        return f"member {name!r} has an absolute path"
    if ".." in name.split("/"):
        return f"member {name!r} climbs out of the target directory with '..'"
    if kind in _SPECIAL_FILES:
        return f"member {name!r} is {_SPECIAL_FILES[kind]}"
    if kind == b"2":
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))
        if linkname.startswith("/") or target == ".." or target.startswith("../"):
            return f"symlink member {name!r} points outside the archive (-> {printable(linkname)})"
    if kind == b"1" and (linkname.startswith("/") or ".." in linkname.split("/")):
        return f"hard link member {name!r} points outside the archive (-> {printable(linkname)})"
    return None


class MemberGuard:
    """Says whether a member of one archive is unsafe, given the link members before it.

    ``unsafe_reason`` judges each member alone; a chain passes it: after ``a/b -> ..`` and
    ``a/b/c -> ..`` (each pointing inside), ``a/b/c/x`` lands outside the target. A path is
    kept as a chain of hashes over its components (``hash((parent, part))``): a lookup costs
    one step per component, and memory does not grow with the names.

    >>> guard = MemberGuard()
    >>> [guard.reason(*member) for member in (("a/b", b"2", ".."), ("a/b/c", b"2", ".."))]
    [None, "member 'a/b/c' goes through the link member 'a/b'"]
    """

    def __init__(self) -> None:
        self._links: set[int] = set()

    def reason(self, name: str, kind: bytes, linkname: str) -> str | None:
        """Return why extracting this member after the previous ones could write outside the
        target (None when it could not); remember it when it is a link."""
        reason = unsafe_reason(name, kind, linkname)
        if reason or not (self._links or kind in _LINK_TYPES):
            return reason
        parts = _parts(name)
        through, key = self._walk(parts)
        if through is not None:
            return f"member {name!r} goes through the link member {through!r}"
        if kind not in _LINK_TYPES:
            return None
        target, _ = self._walk((parts[:-1] if kind == b"2" else []) + _parts(linkname))
        if target is not None:
            return (f"link member {name!r} points through the link member {target!r} "
                    f"(-> {printable(linkname)})")
        if len(self._links) >= MAX_LINKS:
            return f"archive holds more than {MAX_LINKS} link members"
        self._links.add(key)
        return None

    def _walk(self, parts: list[str]) -> tuple[str | None, int]:
        """Return the link member that the path *parts* passes through before its last component
        (None when none; ``..`` climbs back), and the path's key."""
        keys, names = [0], []
        for index, part in enumerate(parts):
            if part == "..":
                if names:
                    keys.pop()
                    names.pop()
                continue
            keys.append(hash((keys[-1], part)))
            names.append(part)
            if index < len(parts) - 1 and keys[-1] in self._links:
                return "/".join(names), keys[-1]
        return None, keys[-1]


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]
