"""Build test archives from the real iTop 3.2 archive: good ones in other shapes, and broken ones.

Members are written with tarfile's old-GNU headers (what iTop writes) or, for sizes from
8 GiB, with iTop's 12-digit octal size field. ``BROKEN`` maps each kind of damage to a
function that returns the archive bytes and the reason the verifier must give.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ITOP_ARCHIVE = Path(__file__).parent / "data" / "itop-2026-11-26.tar.gz"
BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)


@functools.cache
def itop_member(name: str) -> bytes:
    """Return the content of *name* (``config-itop.php``, ``itop-dump.sql``) in the real archive."""
    with tarfile.open(ITOP_ARCHIVE) as archive:
        return archive.extractfile(name).read()


def write_runner_archive(output: BinaryIO, read_dump: Callable[[int], bytes], **writer_options: int) -> None:
    """Write our runner's archive shape (backup/run.py) to *output*: config, a reserved
    manifest.json, the dump streamed from *read_dump* last, then the manifest filled in
    (*writer_options* for TarGzWriter: ``level``, 6 unless given, ``workers``, ``chunk_size``)."""
    from check_itop_backup.archive.writer import TarGzWriter

    writer = TarGzWriter(output, **{"level": 6, **writer_options})
    writer.add_bytes("config-itop.php", itop_member("config-itop.php"))
    reservation = writer.reserve_member("manifest.json", 200)
    summary = writer.add_stream("itop-dump.sql", read_dump)
    manifest = json.dumps({"dump": {"size": summary.size, "sha256": summary.sha256}}).encode()
    writer.fill(reservation, "manifest.json", manifest.ljust(200))
    writer.close()


def header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, linkname: str = "",
           base256: bool = False) -> bytes:
    """Return an old-GNU header block; sizes from 8 GiB get iTop's 12 octal digits without NUL.

    With *base256*, the size is written in GNU base-256 form instead (what iTop cannot read).
    """
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = kind, linkname, 1795680000, 0o644
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")[-BLOCK:])
    if base256:
        block[124:136] = b"\x80" + size.to_bytes(11, "big")
    else:
        block[124:136] = b"%011o\0" % size if size < 8 << 30 else b"%012o" % size
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> bytes:
    """Return a whole tar member: header (with a GNU long-name entry when needed) and padded data."""
    long_name = b""
    if len(name.encode()) > 99:
        encoded = name.encode() + b"\0"
        long_name = header("././@LongLink", len(encoded), tarfile.GNUTYPE_LONGNAME) + padded(encoded)
    return long_name + header(name[:99], len(data), kind, linkname) + padded(data)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def itop_tar(dump: bytes | None = None, config: bytes | None = None, extra: tuple[bytes, ...] = (),
             end: bytes = END_OF_ARCHIVE) -> bytes:
    """Return an iTop-shaped tar: config-itop.php, *extra* members, itop-dump.sql, end marker.

    *dump* and *config* default to the real archive's; pass ``b""`` for an empty member.
    """
    config = itop_member("config-itop.php") if config is None else config
    dump = itop_member("itop-dump.sql") if dump is None else dump
    return member("config-itop.php", config) + b"".join(extra) + member("itop-dump.sql", dump) + end


def gzip_members(*parts: bytes) -> bytes:
    """Return each part as its own gzip member, concatenated (a multi-member gzip stream)."""
    return b"".join(gzip.compress(part, compresslevel=6, mtime=0) for part in parts)


def zip_archive(members: dict[str, bytes]) -> bytes:
    """Return a .zip (as iTop before 2.4 wrote) holding *members*."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_of_empty_members(count: int, zip64: bool = False) -> bytes:
    """Return a .zip of *count* empty stored members, built by hand (zipfile would take minutes).

    With *zip64*, the directory's size is given by a zip64 end record only: the classic end
    record says 0 (zipfile believes the zip64 one)."""
    local, central, offset = [], [], 0
    for number in range(count):
        name = b"production-modules/%030d" % number
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0,
                                   len(name), 0, 0, 0, 0, 0, offset) + name)
        local.append(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name)
        offset += len(local[-1])
    directory = b"".join(central)
    entries = min(count, 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, 0 if zip64 else len(directory),
                      offset, 0)
    if zip64:
        end = (struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory),
                           offset)
               + struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1) + end)
    return b"".join(local) + directory + end


def _good() -> bytes:
    return ITOP_ARCHIVE.read_bytes()


def _flipped() -> bytes:
    data = bytearray(_good())
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


_DUMP = "itop-dump.sql"
_MIB = 1 << 20

# damage -> (archive bytes, the reason the verifier must give, or its start when it ends with "...")
BROKEN: dict[str, Callable[[], tuple[bytes, str]]] = {
    "truncated": lambda: (_good()[:600_000],
                          "gzip stream truncated: the file ends after 585.9 KiB "
                          "in the middle of compressed data"),
    "one byte flipped": lambda: (_flipped(), "gzip stream corrupt after byte ..."),
    "not gzip": lambda: (itop_tar(), "not a gzip or zip file"),
    "gzip of garbage": lambda: (gzip_members(bytes(range(256)) * 64),
                                "the gzip stream does not hold a tar archive "
                                "(tar header at offset 0 has a bad checksum)"),
    "missing itop-dump.sql": lambda: (gzip_members(member("config-itop.php", itop_member("config-itop.php"))
                                                   + END_OF_ARCHIVE),
                                      "required member itop-dump.sql is missing"),
    "missing config-itop.php": lambda: (gzip_members(member(_DUMP, itop_member(_DUMP)) + END_OF_ARCHIVE),
                                        "required member config-itop.php is missing"),
    "dump without trailer": lambda: (gzip_members(itop_tar(dump=itop_member(_DUMP)[:_MIB])),
                                     "itop-dump.sql ends without the mysqldump completion trailer: "
                                     "dump truncated at 1.0 MiB"),
    "empty dump": lambda: (gzip_members(itop_tar(dump=b"")), "itop-dump.sql is empty"),
    "dump without tables": lambda: (gzip_members(itop_tar(dump=b"-- nothing\n-- Dump completed on 2026\n")),
                                    "itop-dump.sql contains no CREATE TABLE statement"),
    "config does not parse": lambda: (gzip_members(itop_tar(config=b"<?php $MySettings = array(;")),
                                      "config-itop.php does not parse: ..."),
    "traversal name": lambda: (gzip_members(itop_tar(extra=(member("../../etc/cron.d/x", b"x"),))),
                               "member '../../etc/cron.d/x' climbs out of the target directory with '..'"),
    "absolute name": lambda: (gzip_members(itop_tar(extra=(member("/etc/cron.d/x", b"x"),))),
                              "member '/etc/cron.d/x' has an absolute path"),
    "symlink member": lambda: (gzip_members(itop_tar(extra=(
        member("production-modules/passwd", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),))),
        "symlink member 'production-modules/passwd' points outside the archive (-> /etc/passwd)"),
    "device member": lambda: (gzip_members(itop_tar(extra=(member("dev/sda", kind=tarfile.BLKTYPE),))),
                              "member 'dev/sda' is a block device"),
    "trailing garbage": lambda: (_good() + b"garbage!",
                                 "trailing garbage after the gzip stream at byte 1158231"),
    "tar cut inside the dump": lambda: (gzip_members(itop_tar()[:200_000]),
                                        "tar stream ends inside member itop-dump.sql: "
                                        "187200 of 1424757 bytes"),
    "no end-of-archive marker": lambda: (gzip_members(itop_tar(end=b"")),
                                         "tar stream ends without the end-of-archive marker"),
    "corrupt zip member": lambda: (_corrupt_zip(), "zip member itop-dump.sql is corrupt: ..."),
}


def _corrupt_zip() -> bytes:
    data = bytearray(zip_archive({"config-itop.php": itop_member("config-itop.php"),
                                  _DUMP: itop_member(_DUMP)}))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def pax_header(records: dict[str, str]) -> bytes:
    """Return a PAX extended header member (type ``x``) holding *records* for the next member."""
    data = b""
    for key, value in records.items():
        body = f" {key}={value}\n".encode()
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        data += str(length).encode() + body
    return header("././@PaxHeader", len(data), tarfile.XHDTYPE) + padded(data)


def _with_size_field(block: bytes, field: bytes) -> bytes:
    """Return the header *block* with its size field replaced by *field* and the checksum redone."""
    block = bytearray(block)
    block[124:136], block[148:156] = field, b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _link_chain() -> bytes:
    # each link points inside on its own; together, a/b/c/x lands in the target's parent
    return gzip_members(itop_tar(extra=(member("a/b", kind=tarfile.SYMTYPE, linkname=".."),
                                        member("a/b/c", kind=tarfile.SYMTYPE, linkname=".."),
                                        member("a/b/c/x", b"escaped"))))


def _with_manifest(manifest: object) -> bytes:
    return gzip_members(itop_tar(extra=(member("manifest.json", json.dumps(manifest).encode()),)))


# Hostile archives: trap -> (archive bytes, the one-line reason the verifier must give).
HOSTILE: dict[str, Callable[[], tuple[bytes, str]]] = {
    "PAX size=-1536": lambda: (
        gzip_members(pax_header({"size": "-1536"}) + member("a", b"x") + END_OF_ARCHIVE),
        "PAX extended header has an invalid size '-1536' for member 'a'"),
    "PAX size=abc": lambda: (
        gzip_members(pax_header({"size": "abc"}) + member("a", b"x") + END_OF_ARCHIVE),
        "PAX extended header has an invalid size 'abc' for member 'a'"),
    "PAX size=-600 in a good archive": lambda: (
        gzip_members(itop_tar(extra=(pax_header({"size": "-600"}), member("production-modules/x", b"y")))),
        "PAX extended header has an invalid size '-600' for member 'production-modules/x'"),
    "negative size field": lambda: (
        gzip_members(itop_tar(extra=(_with_size_field(header("production-modules/x"), b"-0000003000\0"),))),
        "numeric field b'-0000003000\\x00' is not octal"),
    "symlink chain": lambda: (_link_chain(), "member 'a/b/c' goes through the link member 'a/b'"),
    "symlink through a symlink": lambda: (
        gzip_members(itop_tar(extra=(member("a/b", kind=tarfile.SYMTYPE, linkname=".."),
                                     member("c", kind=tarfile.SYMTYPE, linkname="a/b/..")))),
        "link member 'c' points through the link member 'a/b' (-> a/b/..)"),
    "newline in a member name": lambda: (
        gzip_members(itop_tar(end=header("production-modules/x\nOK: all fine", 1000))),
        "tar stream ends inside member 'production-modules/x\\nOK: all fine': 0 of 1000 bytes"),
    "newline in a link target": lambda: (
        gzip_members(itop_tar(extra=(member("production-modules/l", kind=tarfile.SYMTYPE,
                                            linkname="/etc/passwd\nOK: all fine"),))),
        "symlink member 'production-modules/l' points outside the archive (-> '/etc/passwd\\nOK: all fine')"),
    "65537 link members": lambda: (
        gzip_members(itop_tar(extra=tuple(header(f"production-modules/l{number}", kind=tarfile.SYMTYPE,
                                                 linkname="x") for number in range(65_537)))),
        "archive holds more than 65536 link members"),
    "deeply nested manifest.json": lambda: (
        gzip_members(itop_tar(extra=(member("manifest.json", b"[" * 100_000),))),
        'manifest.json is not a manifest (no "dump" object)'),
    "manifest.json listing 50000 tables the dump lacks": lambda: (
        _with_manifest({"dump": {}, "tables": [{"name": f"t{number}"} for number in range(50_000)]}),
        "itop-dump.sql lacks 50000 of the tables listed in manifest.json: "
        + ", ".join(f"t{number}" for number in range(20)) + " and 49980 more"),
    "manifest.json whose tables are not a list": lambda: (
        _with_manifest({"dump": {}, "tables": 5}),
        'manifest.json is not a manifest ("tables" is not a list)'),
    "manifest.json over 1 MiB": lambda: (
        _with_manifest({"dump": {}, "padding": "x" * (1 << 20)}), "manifest.json is larger than 1.0 MiB"),
    "name longer than PATH_MAX": lambda: (
        gzip_members(itop_tar(extra=(member("production-modules/" + "d/" * 3000 + "x", b"y"),))),
        "member 'production-modules/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d'... "
        "has a name or link target longer than 4096 bytes"),
}
