"""Streaming tar.gz writer for archives iTop's own restore reads (tests/data/itop/ holds its tar reader).

Headers are old-GNU (magic ``ustar  \\0``) with plain octal numbers: sizes below 8 GiB take 11
digits and a NUL, sizes from 8 GiB to 64 GiB - 1 take 12 digits without NUL (what iTop writes
and reads), larger sizes use GNU base-256, which Python's tarfile reads but iTop cannot
(``needs_own_restore`` tells). Long names use GNU ``././@LongLink`` entries; no PAX.

The gzip stream is a sequence of gzip members, which ``gzip -d``, Python's gzip module (and so
tarfile's ``r:gz``) and iTop's restore read as one stream. Data is cut into chunks deflated on
a thread pool (ISA-L and zlib-ng release the GIL; codec.py maps ``--compress-level`` onto
them), and written in order, so memory stays bounded whatever the size; chunks that do not
compress (BLOBs) are stored rather than deflated. A member whose size is unknown until its
data has been read (the dump) gets its header in a *reserved* gzip member of fixed length: a
stored (uncompressed) deflate block, written as zeros first and overwritten in place once the
size is known. The output file must therefore be seekable.

Read an archive back with ``tarfile.open(path, "r:gz")``. Not with ``"r|gz"``: tarfile's stream
mode reads the first gzip member only and raises ``ReadError`` at the second; to stream, give
``mode="r|"`` a ``gzip.open(path)``."""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from check_itop_backup.archive import codec

BLOCK = 512
CHUNK_SIZE = 1 << 20
OCTAL_11_LIMIT = 8 << 30  # 8 GiB: first size that needs 12 octal digits
OCTAL_12_LIMIT = 64 << 30  # 64 GiB: first size iTop's reader cannot read
_STORED_BLOCK_MAX = 65535
_SAMPLES, _SAMPLE_SIZE, _INCOMPRESSIBLE = 4, 8192, 0.95
_MEMBER_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no flags, no mtime, Unix
_LONGLINK = "././@LongLink"
_NAME_LIMIT = 100
PAX_GLOBAL_TYPE = b"g"


def octal_field(value: int, width: int) -> bytes:
    """Return *value* as a tar numeric field of *width* bytes, iTop-readable when possible.

    Octal digits and a NUL when they fit, all *width* octal digits without NUL when only
    that fits (12-digit sizes, 8-64 GiB), else GNU base-256.

    >>> octal_field(1424757, 12), octal_field(8 << 30, 12)
    (b'00005336565\\x00', b'100000000000')
    >>> octal_field(64 << 30, 12)[:1], len(octal_field(64 << 30, 12))
    (b'\\x80', 12)
    """
    digits = f"{value:o}"
    if len(digits) < width:
        return digits.rjust(width - 1, "0").encode() + b"\0"
    if len(digits) == width:
        return digits.encode()
    return b"\x80" + value.to_bytes(width - 1, "big")


def needs_own_restore(size: int) -> bool:
    """True when a member of *size* bytes cannot be read by iTop's restore (64 GiB or more)."""
    return size >= OCTAL_12_LIMIT


def tar_header(name: str, size: int, mtime: float, mode: int = 0o644, kind: bytes = b"0") -> bytes:
    """Return the 512-byte old-GNU header block(s) of one member; long names get a LongLink."""
    encoded = name.encode("utf-8")
    prefix = b""
    if len(encoded) >= _NAME_LIMIT:
        link_data = encoded + b"\0"
        prefix = _one_header(_LONGLINK.encode(), len(link_data), 0, 0o644, b"L") + _padded(link_data)
    return prefix + _one_header(encoded[:_NAME_LIMIT], size, mtime, mode, kind)


def pax_record(key: str, value: bytes) -> bytes:
    """Return one PAX extended header record: ``<length> <key>=<value>\\n``, the length counting itself.

    >>> pax_record("comment", b"hi")
    b'14 comment=hi\\n'
    """
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _one_header(name: bytes, size: int, mtime: float, mode: int, kind: bytes) -> bytes:
    uid, gid = os.getuid(), os.getgid()
    fields = [
        name.ljust(100, b"\0"),
        octal_field(mode & 0o777, 8),
        octal_field(uid, 8),
        octal_field(gid, 8),
        octal_field(size, 12),
        octal_field(int(mtime), 12),
        b" " * 8,  # checksum, computed below
        kind,
        b"\0" * 100,  # link name
        b"ustar  \0",  # old-GNU magic and version, as iTop writes
        _user_name(uid).ljust(32, b"\0"),
        _group_name(gid).ljust(32, b"\0"),
        b"\0" * 8, b"\0" * 8,  # device numbers
    ]
    header = b"".join(fields).ljust(BLOCK, b"\0")
    checksum = f"{sum(header):06o}".encode() + b"\0 "
    return header[:148] + checksum + header[156:]


def _user_name(uid: int) -> bytes:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name.encode()[:31]
    except KeyError:
        return b""


def _group_name(gid: int) -> bytes:
    import grp

    try:
        return grp.getgrgid(gid).gr_name.encode()[:31]
    except KeyError:
        return b""


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def gzip_member(data: bytes, level: int) -> bytes:
    """Return *data* as one complete gzip member at ``--compress-level`` *level* (0: stored)."""
    if level == 0:
        return stored_gzip_member(data)
    return codec.gzip_compress(data, level)


def compress_chunk(data: bytes, level: int) -> bytes:
    """Return *data* as one gzip member: deflated, or, when samples show it will hardly shrink,
    stored (fast levels) or Huffman-coded only (dense levels, codec.gzip_literals).

    Searching matches in random bytes (BLOBs, compressed attachments) costs CPU and saves
    nothing, so a chunk whose spread samples do not compress at level 1 is not searched.

    >>> len(compress_chunk(bytes(1 << 20), 6)) < 2000, len(compress_chunk(os.urandom(1 << 20), 6)) > 1 << 20
    (True, True)
    """
    if level and len(data) >= _SAMPLES * _SAMPLE_SIZE:
        step = len(data) // _SAMPLES
        sampled = sum(len(gzip_member(data[index * step:index * step + _SAMPLE_SIZE], 1))
                      for index in range(_SAMPLES))
        if sampled > _INCOMPRESSIBLE * _SAMPLES * _SAMPLE_SIZE:
            return codec.gzip_literals(data, level) or stored_gzip_member(data)
    return gzip_member(data, level)


def stored_gzip_member(data: bytes) -> bytes:
    """Return *data* as a gzip member of stored deflate blocks (its length depends only on len(data)).

    >>> import gzip; gzip.decompress(stored_gzip_member(b"abc") + gzip_member(b"def", 6))
    b'abcdef'
    """
    blocks = [_MEMBER_HEADER]
    for start in range(0, max(len(data), 1), _STORED_BLOCK_MAX):
        piece = data[start:start + _STORED_BLOCK_MAX]
        final = start + _STORED_BLOCK_MAX >= len(data)
        blocks.append(struct.pack("<BHH", int(final), len(piece), len(piece) ^ 0xFFFF) + piece)
    blocks.append(struct.pack("<II", codec.crc32(data), len(data) & 0xFFFFFFFF))
    return b"".join(blocks)


class ParallelGzip:
    """Compress written bytes into ordered gzip members, one per chunk, on a thread pool.

    At most ``2 * workers`` chunks are in flight, so memory is bounded by a few chunks.
    A chunk equal to the one before (zero-filled regions, sparse files) reuses its member.
    ``flush()`` writes everything written so far to the output.
    """

    def __init__(self, output: BinaryIO, level: int = codec.DEFAULT_LEVEL, workers: int | None = None,
                 chunk_size: int = CHUNK_SIZE) -> None:
        codec.load(level)  # here, not in the pool's threads: one import, one log line
        self.output = output
        self.level = level
        self.chunk_size = chunk_size
        self.workers = workers or os.cpu_count() or 1
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, "gzip")
        self._pending: collections.deque = collections.deque()
        self._buffer = bytearray()
        self._last: tuple[bytes, concurrent.futures.Future] | None = None

    def write(self, data: bytes) -> None:
        """Queue *data* for compression (whole chunks are submitted at once)."""
        if not self._buffer and len(data) >= self.chunk_size:
            self._submit(bytes(data))
            return
        self._buffer += data
        if len(self._buffer) >= self.chunk_size:
            self._submit(bytes(self._buffer))
            self._buffer.clear()

    def flush(self) -> None:
        """Compress what is buffered and write every pending member, in order."""
        if self._buffer:
            self._submit(bytes(self._buffer))
            self._buffer.clear()
        while self._pending:
            self.output.write(self._pending.popleft().result())

    def close(self) -> None:
        """Flush, then stop the worker threads."""
        try:
            self.flush()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker threads, dropping what is not written yet."""
        self._pending.clear()
        self._last = None
        self._pool.shutdown(cancel_futures=True)

    def _submit(self, data: bytes) -> None:
        while len(self._pending) >= 2 * self.workers:
            self.output.write(self._pending.popleft().result())
        if self._last is None or self._last[0] != data:
            self._last = (data, self._pool.submit(compress_chunk, data, self.level))
        self._pending.append(self._last[1])


@dataclass(frozen=True)
class Reservation:
    """A fixed-length region of the output to overwrite later with a stored gzip member."""

    offset: int
    length: int  # uncompressed bytes the region carries
    size: int = 0  # data bytes of the member to come (reserve_member)


@dataclass(frozen=True)
class StreamSummary:
    """What ``add_stream`` learned about the data it copied."""

    size: int
    sha256: str
    tail: bytes  # the last bytes of the data (up to 256), e.g. to check a trailer


class TarGzWriter:
    """Write a tar.gz member by member to a seekable binary file; ``close()`` ends the archive.

    Members are written in call order. ``mtime`` (default: now) stamps every member.
    """

    def __init__(self, output: BinaryIO, level: int = codec.DEFAULT_LEVEL, workers: int | None = None,
                 mtime: float | None = None, chunk_size: int = CHUNK_SIZE) -> None:
        self.output = output
        self.mtime = time.time() if mtime is None else mtime
        self.gzip = ParallelGzip(output, level, workers, chunk_size)
        self.chunk_size = chunk_size

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file member holding *data*."""
        self.gzip.write(tar_header(name, len(data), self.mtime, mode) + _padded(data))

    def add_directory(self, name: str, mode: int = 0o755) -> None:
        """Add a directory member (type 5, no trailing slash, as iTop writes)."""
        self.gzip.write(tar_header(name.rstrip("/"), 0, self.mtime, mode, b"5"))

    def add_file(self, name: str, path: str) -> None:
        """Add the regular file at *path* as member *name*, streamed (its size must not change)."""
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            self.gzip.write(tar_header(name, size, self.mtime, os.fstat(source.fileno()).st_mode))
            copied = sum(len(chunk) for chunk in self._copy(source.read, size))
        if copied != size:
            raise OSError(f"{path} changed size while being archived")
        self.gzip.write(b"\0" * (-size % BLOCK))

    def reserve_member(self, name: str, size: int) -> Reservation:
        """Reserve a member of exactly *size* bytes whose content is given later to ``fill``."""
        return self._reserve(len(tar_header(name, size, self.mtime)) + size + (-size % BLOCK), size)

    def fill(self, reservation: Reservation, name: str, data: bytes, kind: bytes = b"0") -> None:
        """Write member *name* holding *data* into *reservation* (*data* has the reserved size);
        *kind* ``PAX_GLOBAL_TYPE`` makes it a PAX global header, *data* its records."""
        member = tar_header(name, len(data), self.mtime, kind=kind) + _padded(data)
        if len(data) != reservation.size or len(member) != reservation.length:
            raise ValueError(f"{name}: {len(data)} bytes do not fit the reserved member")
        self._overwrite(reservation, member)

    def add_stream(self, name: str, read: Callable[[int], bytes],
                   progress: Callable[[int], None] | None = None) -> StreamSummary:
        """Add member *name* with the data of ``read(n)`` until it returns b"", size unknown ahead.

        The header goes into a reserved block written once the size is known; *progress* is
        called with the byte count so far after each chunk.
        """
        if len(name.encode()) >= _NAME_LIMIT:
            raise ValueError(f"stream member name too long: {name}")
        reservation = self._reserve(BLOCK)
        digest = hashlib.sha256()
        size, tail = 0, b""
        for chunk in self._copy(read, None, digest):
            size += len(chunk)
            tail = (tail + chunk[-256:])[-256:]
            if progress:
                progress(size)
        self.gzip.write(b"\0" * (-size % BLOCK))
        self.gzip.flush()
        self._overwrite(reservation, tar_header(name, size, self.mtime))
        return StreamSummary(size, digest.hexdigest(), tail)

    def close(self) -> None:
        """Write the end-of-archive blocks and flush; the caller closes (and fsyncs) the file."""
        self.gzip.write(b"\0" * (2 * BLOCK))
        self.gzip.close()
        self.output.flush()

    def abort(self) -> None:
        """Stop the worker threads without finishing the archive."""
        self.gzip.shutdown()

    def _copy(self, read: Callable[[int], bytes], limit: int | None,
              digest: hashlib._Hash | None = None) -> Iterator[bytes]:
        remaining = limit
        while remaining is None or remaining > 0:
            chunk = read(self.chunk_size if remaining is None else min(self.chunk_size, remaining))
            if not chunk:
                return
            if digest is not None:
                digest.update(chunk)
            self.gzip.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    def _reserve(self, length: int, size: int = 0) -> Reservation:
        self.gzip.flush()
        reservation = Reservation(self.output.tell(), length, size)
        self.output.write(stored_gzip_member(bytes(length)))
        return reservation

    def _overwrite(self, reservation: Reservation, data: bytes) -> None:
        end = self.output.tell()
        self.output.seek(reservation.offset)
        self.output.write(stored_gzip_member(data))
        self.output.seek(end)
