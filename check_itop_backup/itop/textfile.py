"""Read the small text files people point us at: configs, param files, option and password files.

Each read is size-limited, so that a wrong path (``/dev/zero``, a log file, a disk image)
ends with one clear error instead of reading until the kernel kills the process.
Every failure is an ``OSError`` whose ``strerror`` says why, as for a missing file.
"""

from __future__ import annotations

import errno

MAX_BYTES = 1 << 20  # config-itop.php is about 10 kB; 1 MiB is far above any real one


def read_text(path: str, limit: int = MAX_BYTES, errors: str = "strict") -> str:
    """Return the UTF-8 text of *path*; raise OSError when it cannot be read, holds more than
    *limit* bytes, or (with ``errors="strict"``) is not UTF-8."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as error:
        raise OSError(errno.EILSEQ, f"not UTF-8 text (byte {error.start})", path) from None
