"""Benchmark: dump-level verification against ``gzip -t``, iTop's and our runner's archives, 3 sizes.

Usage: ``python3 bench/bench_verify.py [--sizes 400,1200,2400] [--dir DIR] [--rounds 3]``

Builds (once, then reuses), for each size (MB of dump), a single-member gzip'd old-GNU tar at
level 6 holding the real ``config-itop.php`` and a generated mysqldump-shaped ``itop-dump.sql``
(CREATE TABLE statements, extended INSERTs mixing text and base64 blobs, the completion
trailer), as iTop writes it, and the same members written by our runner's tar writer at its
default level (multi-member gzip, with the manifest, so the dump's SHA-256 is checked too). For
each archive it then alternates ``gzip -t`` and ``itop-backup verify --level dump`` on that file,
each in its own process, and prints the median wall and CPU times, the median of the per-round
wall ratios and the verifier's peak RSS. Targets (issue 13), for both archives: ratio <= 0.35,
peak RSS <= 64 MB. Exit status 1 when a target is missed.

With ``--baseline-ref REF`` (default: the commit before per-table counting and before ISA-L,
whose verifier inflated with zlib, our runner's gzip members in parallel), the verifier of
that commit (``git archive``, in a temporary directory) runs in the same rounds, and the
median ratio of today's pass to it is printed: target <= 1.10 (issue 17: the per-table
counting may cost 10 %).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from check_itop_backup.archive.codec import DEFAULT_LEVEL  # noqa: E402
from tests.archive_corpus import END_OF_ARCHIVE, header, itop_member, member, write_runner_archive  # noqa: E402

RATIO_TARGET = 0.35
RSS_TARGET_MB = 64
BASELINE_TARGET = 1.10
BASELINE_REF = "e18264e"  # main before the per-table row and byte counting (issue 17)
TABLES = 120
POOL_LINES = 48


def _line_pool(rng: random.Random) -> list[bytes]:
    """Distinct extended-INSERT lines (~0.6 MB each); repeats are beyond deflate's 32 KiB window."""
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(5000)]
    lines = []
    for _ in range(POOL_LINES):
        rows = ",".join(
            f"({number},'{' '.join(rng.choices(words, k=30))}',"
            f"'{base64.b64encode(rng.randbytes(30)).decode() if number % 2 else ''}',NULL,"
            f"'2026-11-26 10:00:00')" for number in range(2000))
        lines.append(f"INSERT INTO `ticket` VALUES {rows};\n".encode())
    return lines


def _dump_pieces(target_bytes: int, rng: random.Random):
    """Yield the dump in pieces; stop after about *target_bytes* of uncompressed SQL."""
    yield b"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n-- Host: 127.0.0.1    Database: itop\n"
    pool, written, table = _line_pool(rng), 0, 0
    while written < target_bytes:
        statement = (f"\n--\n-- Table structure for table `table_{table}`\n--\n\n"
                     f"DROP TABLE IF EXISTS `table_{table}`;\nCREATE TABLE `table_{table}` (\n"
                     f"  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n")
        table = (table + 1) % TABLES
        for line in [statement.encode()] + rng.sample(pool, 8):
            written += len(line)
            yield line
    yield b"\n-- Dump completed on 2026-11-26 10:07:39\n"


def _write_dump(path: Path, size_mb: int) -> int:
    """Write the generated dump of about *size_mb* MB to *path* (the same bytes each time); return its
    size."""
    with open(path, "wb") as dump:
        for piece in _dump_pieces(int(size_mb * 1e6), random.Random(4)):
            dump.write(piece)
    return path.stat().st_size


def _itop_archive(output: BinaryIO, dump: BinaryIO, size: int) -> None:
    """iTop's shape: one gzip member at level 6."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    output.write(compressor.compress(member("config-itop.php", itop_member("config-itop.php"))))
    output.write(compressor.compress(header("itop-dump.sql", size, tarfile.REGTYPE)))
    for piece in iter(lambda: dump.read(1 << 20), b""):
        output.write(compressor.compress(piece))
    output.write(compressor.compress(bytes(-size % 512) + END_OF_ARCHIVE))
    output.write(compressor.flush())


def _runner_archive(output: BinaryIO, dump: BinaryIO, size: int) -> None:
    """Our runner's shape (backup/run.py) at its default level: config, a reserved manifest, the
    dump streamed last."""
    write_runner_archive(output, dump.read, level=DEFAULT_LEVEL)


WRITERS = {"iTop": _itop_archive, "runner": _runner_archive}


def build_archive(path: Path, size_mb: int, writer: str) -> None:
    """Write the benchmark archive in *writer*'s shape to *path* (via a temporary name)."""
    dump_path = path.with_suffix(".sql.tmp")
    size = _write_dump(dump_path, size_mb)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as output, open(dump_path, "rb") as dump:
        WRITERS[writer](output, dump, size)
    dump_path.unlink()
    os.replace(temporary, path)


# Runs ``itop-backup verify`` and then prints the process's own peak RSS (VmHWM, kB) on stderr.
# (ru_maxrss would count the benchmark's own memory, inherited across fork before exec.)
_VERIFY = """
import sys
from check_itop_backup.cli.backup import backup_main
try:
    backup_main(sys.argv[1:])
finally:
    sys.stderr.write([line for line in open("/proc/self/status") if line.startswith("VmHWM")][0])
"""


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Run *argv*; return (wall seconds, CPU seconds, its stderr). Fail loudly on a non-zero exit."""
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read()
    if process.returncode:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {stderr}")
    return wall, usage.ru_utime + usage.ru_stime, stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="400,1200,2400", help="MB of dump, comma-separated")
    parser.add_argument("--dir", default="/tmp/check_itop_backup-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default=BASELINE_REF,
                        help="git commit whose verifier is timed in the same rounds ('' for none)")
    args = parser.parse_args()
    args.baseline = _baseline_tree(args.baseline_ref) if args.baseline_ref else None
    met = True
    for size_mb in map(int, args.sizes.split(",")):
        for writer, name in (("iTop", f"itop-bench-{size_mb}mb-dump.tar.gz"),
                             ("runner", f"runner-bench-{size_mb}mb-dump.tar.gz")):
            met = measure(Path(args.dir) / name, size_mb, args, writer) and met
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


def _baseline_tree(ref: str) -> str | None:
    """Unpack the package of commit *ref* into a temporary directory, removed at exit; return it
    (None without git)."""
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="bench-verify-baseline-")
    atexit.register(shutil.rmtree, directory, True)
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "check_itop_backup"],
                                 check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"no baseline: git archive {ref} failed ({error})")
        return None
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    return directory


def measure(path: Path, size_mb: int, args: argparse.Namespace, writer: str) -> bool:
    """Time ``gzip -t`` and the verifier on *writer*'s archive at *path* (built if missing); print;
    return whether the targets are met."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {path} (once) ...", flush=True)
        build_archive(path, size_mb, writer)
    path.read_bytes()  # warm the page cache so neither side pays for the disk
    verify = [sys.executable, "-c", _VERIFY, "verify", "--level", "dump", str(path)]
    baseline = [sys.executable, "-c", f"import sys; sys.path.insert(0, {args.baseline!r})\n" + _VERIFY,
                "verify", "--level", "dump", str(path)] if args.baseline else None
    gzip_times, verify_times, gzip_cpu, verify_cpu, rss, baseline_times = [], [], [], [], [], []
    for _ in range(args.rounds):
        wall, cpu, _ = timed(["gzip", "-t", str(path)])
        gzip_times.append(wall)
        gzip_cpu.append(cpu)
        wall, cpu, stderr = timed(verify)
        verify_times.append(wall)
        verify_cpu.append(cpu)
        rss.append(int(stderr.split()[-2]) / 1024)
        if baseline:
            baseline_times.append(timed(baseline)[0])
    ratio = statistics.median(verify / gzip for verify, gzip in zip(verify_times, gzip_times))
    peak_rss = max(rss)
    met = ratio <= RATIO_TARGET and peak_rss <= RSS_TARGET_MB
    gzip_wall, gzip_cpu_time = statistics.median(gzip_times), statistics.median(gzip_cpu)
    verify_wall, verify_cpu_time = statistics.median(verify_times), statistics.median(verify_cpu)
    print(f"{writer} archive, {size_mb} MB dump, {path.stat().st_size / 1e6:.0f} MB compressed; "
          f"{args.rounds} rounds, alternating, medians:\n"
          f"  gzip -t {gzip_wall:6.2f} s wall {gzip_cpu_time:6.2f} s CPU;"
          f"  verify {verify_wall:6.2f} s wall {verify_cpu_time:6.2f} s CPU;"
          f"  ratio {ratio:.2f}x wall (target <= {RATIO_TARGET}x), "
          f"{verify_cpu_time / gzip_cpu_time:.2f}x CPU;"
          f"  peak RSS {peak_rss:.1f} MB (target <= {RSS_TARGET_MB} MB): {'met' if met else 'NOT met'}",
          flush=True)
    if baseline_times:
        against = statistics.median(now / then for now, then in zip(verify_times, baseline_times))
        print(f"  the verifier of {args.baseline_ref} (zlib, parallel members): "
              f"{statistics.median(baseline_times):6.2f} s wall; today {against:.2f}x, median of rounds "
              f"(issue 17's target <= {BASELINE_TARGET}x)", flush=True)
        met = met and against <= BASELINE_TARGET
    return met

if __name__ == "__main__":
    sys.exit(main())
