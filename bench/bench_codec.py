"""Benchmark: what each ``--compress-level`` costs and saves, one core, chunk by chunk as the runner works.

Usage: ``python3 bench/bench_codec.py [--mb 64] [--rounds 3]``

Generates ``--mb`` MB of bench_runner.py's ticket rows as mysqldump writes them (one extended
INSERT per ~1 MB) and as many random bytes (BLOBs), then, for each level, deflates them in the
runner's 1 MiB chunks (archive/writer.py's ``compress_chunk``, which stores a chunk whose samples
do not shrink, and ``gzip_member``, which deflates whatever it gets) and prints MB/s of input on
one core and output/input, with zlib 6 (what ``gzip -6`` and ``pigz -6`` use) as the baseline of
the same run; then the speed of inflating a zlib-6 stream (zlib, ISA-L) and of SHA-256.
Medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_runner import WORDS  # noqa: E402

from check_itop_backup.archive import codec  # noqa: E402
from check_itop_backup.archive.writer import CHUNK_SIZE, compress_chunk, gzip_member  # noqa: E402


def ticket_text(size: int) -> bytes:
    """bench_runner.py's ticket rows, as mysqldump's extended INSERTs."""
    rng, lines, total = random.Random(5), [], 0
    while total < size:
        rows = ",".join(f"({len(lines) * 800 + number},'{' '.join(rng.choices(WORDS, k=8))}',"
                        f"'{' '.join(rng.choices(WORDS, k=60))}','{' '.join(rng.choices(WORDS, k=100))}"
                        f" #{rng.getrandbits(64):x}')" for number in range(800))
        lines.append(f"INSERT INTO `ticket` VALUES {rows};\n".encode())
        total += len(lines[-1])
    return b"".join(lines)[:size]


def timed(function, data: bytes, rounds: int, level: int) -> tuple[float, int]:
    """Median seconds of CPU time of ``function(chunk, level)`` over *data*'s chunks, and the total
    output size."""
    seconds, size = [], 0
    for _ in range(rounds):
        started = time.process_time()
        size = sum(len(function(data[start:start + CHUNK_SIZE], level))
                   for start in range(0, len(data), CHUNK_SIZE))
        seconds.append(time.process_time() - started)
    return statistics.median(seconds), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    inputs = {"text": ticket_text(args.mb * 10**6), "BLOBs": os.urandom(args.mb * 10**6)}
    print(f"{args.mb} MB of each, 1 MiB chunks, one core, medians of {args.rounds}; "
          f"MB/s of input, output/input, output vs zlib 6")
    for kind, data in inputs.items():
        baseline = timed(zlib.compress, data, args.rounds, 6)
        print(f"{kind}: zlib 6 {len(data) / baseline[0] / 1e6:6.0f} MB/s  {baseline[1] / len(data):.3f}")
        for level in range(10):
            library, own = codec.LEVELS.get(level, ("stored", 0))
            row = f"  level {level} ({library} {own})" if level else "  level 0 (stored)"
            for label, function in (("sampled", compress_chunk), ("deflated", gzip_member)):
                seconds, size = timed(function, data, args.rounds, level)
                row += (f"  {label} {len(data) / seconds / 1e6:6.0f} MB/s {size / len(data):.3f}"
                        f" ({size / baseline[1]:.2f}x)")
            print(row)
        stream = zlib.compress(data, 6)
        for name, exact in (("zlib", True), ("ISA-L", False)):  # zlib streams: one member
            seconds = []
            for _ in range(args.rounds):
                started = time.process_time()
                inflater = (zlib if exact else codec.library(codec.FAST)).decompressobj(15)
                for start in range(0, len(stream), CHUNK_SIZE):
                    inflater.decompress(stream[start:start + CHUNK_SIZE])
                seconds.append(time.process_time() - started)
            rate = len(data) / statistics.median(seconds) / 1e6
            print(f"  inflate of a zlib-6 stream, {name}: {rate:6.0f} MB/s of output")
        seconds = []
        for _ in range(args.rounds):
            started = time.process_time()
            hashlib.sha256(data).hexdigest()
            seconds.append(time.process_time() - started)
        print(f"  SHA-256: {len(data) / statistics.median(seconds) / 1e6:6.0f} MB/s")


if __name__ == "__main__":
    main()
