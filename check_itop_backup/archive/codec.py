"""The deflate and inflate libraries: ISA-L (``isal``) for speed, zlib-ng (``zlib_ng``) for density.

Both write and read standard gzip, so ``gzip``, ``tarfile`` and iTop's restore read what they
write. ``--compress-level`` maps onto them (``LEVELS``): 0 stores without deflating (as zlib's
level 0), 1-3 are ISA-L's levels 1-3 (300-1000 MB/s on one core), 4-9 zlib-ng's (denser, 30-150
MB/s); zlib-ng's levels 1-3 and ISA-L's level 0 are left out, slower or larger than ISA-L's 1-3
(ISA-L's 0 even grows incompressible data by a fifth). ``python3 bench/bench_codec.py`` measures
them. Inflation is ISA-L's everywhere. Each library is imported on first use only (the probe's
stat level loads neither); when one cannot be imported (a platform without its wheels), zlib
does its work, at the same level, and one INFO log line (``-v``) says so.
"""

from __future__ import annotations

import functools
import importlib
import logging
import zlib
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_LEVEL = 2
FAST, DENSE = "isal", "zlib_ng"
_MODULES = {FAST: ("isal.isal_zlib", "isal"), DENSE: ("zlib_ng.zlib_ng", "zlib-ng")}
# --compress-level -> (library, its level); level 0 is stored blocks, written by the caller
LEVELS: dict[int, tuple[str, int]] = {1: (FAST, 1), 2: (FAST, 2), 3: (FAST, 3),
                                      **{level: (DENSE, level) for level in range(4, 10)}}


@functools.cache
def library(name: str) -> Any:
    """Return the zlib-like module of library *name* (``FAST`` or ``DENSE``), else zlib itself,
    saying once at INFO level why."""
    module, package = _MODULES[name]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        log.info("%s cannot be imported (%s): zlib is used instead, slower", package, error)
        return zlib


def load(level: int) -> None:
    """Import the libraries that ``--compress-level`` *level* uses: ISA-L always (CRC-32 and the
    samples of compress_chunk in writer.py), and the level's own."""
    library(FAST)
    if level:
        library(LEVELS[level][0])


def gzip_compress(data: bytes, level: int) -> bytes:
    """Return *data* as one gzip member at ``--compress-level`` *level* (1-9)."""
    name, own_level = LEVELS[level]
    module = library(name)
    if module is zlib:  # zlib.compress takes wbits from Python 3.11 on only
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()
    return module.compress(data, own_level, 31)  # a third faster than through a compressobj


def gzip_literals(data: bytes, level: int) -> bytes | None:
    """Return *data* as one gzip member Huffman-coded without match search, at the dense levels
    (4-9): for BLOBs, where it still saves what deflate would (mysqldump's escaped random bytes
    shrink by 0.7 %, as with zlib 6) at 4x zlib-ng 6's speed. None at the fast levels: store."""
    name, own_level = LEVELS[level]
    if name != DENSE:
        return None
    module = library(DENSE)
    compressor = module.compressobj(own_level if module is not zlib else level, zlib.DEFLATED, 31, 8,
                                    zlib.Z_HUFFMAN_ONLY)
    return compressor.compress(data) + compressor.flush()


def gzip_decompressor(exact: bool = False) -> tuple[Any, type[Exception]]:
    """Return a decompressor of one gzip member, ISA-L's (zlib's when it does not import, or
    with *exact*: the verifier quotes zlib's error messages), and the error it raises."""
    module = zlib if exact else library(FAST)
    return module.decompressobj(31), module.error


def inflates_as_zlib() -> bool:
    """True when ``gzip_decompressor()`` is zlib's (ISA-L does not import)."""
    return library(FAST) is zlib


def crc32(data: bytes) -> int:
    """CRC-32 of *data*, ISA-L's when it imports (several times zlib's speed)."""
    return library(FAST).crc32(data)
