"""Benchmark: dump-level verification of a large iTop-style archive against ``gzip -t``.

Usage: ``python3 bench/bench_verify.py [--size-mb 220] [--dir /tmp/check_itop_backup-bench] [--rounds 5]``

Builds (once, then reuses) a single-member gzip'd old-GNU tar holding the real
``config-itop.php`` and a generated mysqldump-shaped ``itop-dump.sql`` (CREATE TABLE
statements, extended INSERTs mixing text and base64 blobs, the completion trailer) whose
compressed size is at least ``--size-mb`` MB, as iTop writes it, and the same members written
by our runner's tar writer (multi-member gzip whose members announce their length, so that
they are inflated in parallel; plus ``manifest.json``, so the dump's SHA-256 is checked too).
For each archive it then alternates ``gzip -t`` and ``itop-backup verify --level dump`` on
that file, each in its own process, and prints the best and median wall times, their ratio
(best to best, which other load on the machine disturbs least, and the median of per-round
ratios) and the verifier's peak RSS. Targets, for both archives: ratio <= 0.8,
peak RSS <= 64 MB. Exit status 1 when a target is missed.

With ``--baseline-ref REF`` (default: the commit before per-table counting), the verifier of
that commit (``git archive``, in a temporary directory) runs in the same rounds, and the
ratio of today's pass to it is printed: target <= 1.10 (the per-table counting may cost 10 %).
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

from tests.archive_corpus import END_OF_ARCHIVE, header, itop_member, member, write_runner_archive  # noqa: E402

RATIO_TARGET = 0.8
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
    """Write the generated dump to *path* (the same bytes every time); return its size."""
    with open(path, "wb") as dump:
        for piece in _dump_pieces(int(size_mb * 1e6 * 2.2), random.Random(4)):
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
    """Our runner's shape (backup/run.py): config, a reserved manifest, the dump streamed last."""
    write_runner_archive(output, dump.read)


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
    parser.add_argument("--size-mb", type=int, default=220, help="compressed size at least (MB)")
    parser.add_argument("--dir", default="/tmp/check_itop_backup-bench")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-ref", default=BASELINE_REF,
                        help="git commit whose verifier is timed in the same rounds ('' for none)")
    args = parser.parse_args()
    args.baseline = _baseline_tree(args.baseline_ref) if args.baseline_ref else None
    met = True
    for writer, name in (("iTop", f"itop-bench-{args.size_mb}mb.tar.gz"),
                         ("runner", f"runner-bench-{args.size_mb}mb.tar.gz")):
        met = measure(Path(args.dir) / name, args, writer) and met
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


def measure(path: Path, args: argparse.Namespace, writer: str) -> bool:
    """Time ``gzip -t`` and the verifier on *writer*'s archive at *path* (built if missing); print;
    return whether the targets are met."""
    if not path.exists() or path.stat().st_size < args.size_mb * 1e6:
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {path} (once) ...", flush=True)
        build_archive(path, args.size_mb, writer)
    print(f"{writer} archive: {path}, {path.stat().st_size / 1e6:.0f} MB compressed")
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
    print(f"  gzip -t:                 best {min(gzip_times):6.2f} s, "
          f"median {statistics.median(gzip_times):6.2f} s")
    print(f"  itop-backup verify dump: best {min(verify_times):6.2f} s, "
          f"median {statistics.median(verify_times):6.2f} s ({args.rounds} rounds, alternating)")
    ratio, median_ratio = min(verify_times) / min(gzip_times), statistics.median(
        verify / gzip for verify, gzip in zip(verify_times, gzip_times))
    print(f"  CPU time: gzip -t best {min(gzip_cpu):.2f} s, verify best {min(verify_cpu):.2f} s: "
          f"{min(verify_cpu) / min(gzip_cpu):.2f}x (what other load on the machine cannot inflate)")
    peak_rss = max(rss)
    print(f"  ratio: {ratio:.2f}x gzip -t best to best, {median_ratio:.2f}x median of rounds "
          f"(target <= {RATIO_TARGET}x)")
    print(f"  peak RSS: {peak_rss:.1f} MB (target <= {RSS_TARGET_MB} MB)")
    met = ratio <= RATIO_TARGET and peak_rss <= RSS_TARGET_MB
    if baseline_times:
        against = min(verify_times) / min(baseline_times)
        median_against = statistics.median(now / then for now, then in zip(verify_times, baseline_times))
        print(f"  before per-table counting ({args.baseline_ref}): best {min(baseline_times):6.2f} s, "
              f"median {statistics.median(baseline_times):6.2f} s; today {against:.2f}x best to best, "
              f"{median_against:.2f}x median of rounds (target <= {BASELINE_TARGET}x)")
        met = met and against <= BASELINE_TARGET
    return met

if __name__ == "__main__":
    sys.exit(main())
