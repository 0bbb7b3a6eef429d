"""Hostile archives: each ends in a bounded time with a one-line CRITICAL reason, and no
archive, however large its counts, costs more than 64 MB of memory.

Every command runs in a child process of a small wrapper that reports the peak RSS of its one
child (``getrusage(RUSAGE_CHILDREN)``), killed with its process group when it overruns the
(generous) time bound. Memory bounds compare with the same command on the real iTop archive.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from check_itop_backup.archive.inspect import INFLATE_SIZE
from tests.archive_corpus import (
    END_OF_ARCHIVE,
    HOSTILE,
    ITOP_ARCHIVE,
    gzip_members,
    header,
    itop_member,
    itop_tar,
    member,
    zip_of_empty_members,
)
from tests.backup.test_restore import BACKUP, server_options
from tests.checkrun import place_archive
from tests.cli.test_check_verify import NAME, NOW, WRITTEN, check, place

PROBE = [sys.executable, "-m", "check_itop_backup"]
TIME_BOUND = 30  # seconds; the looping archive used to run (and grow) for ever
MEMORY_BOUND = 64 << 10  # kB of RSS beyond the same command on the real archive
# Memory per item is shown by growth: the same command on a small and a 4x larger count, each
# archive large enough for its buffers to be full-sized. Keeping every item would cost ~100 bytes
# a table name (7 MB for the 75000 more), ~500 bytes a member (30 MB for 60000); bounded, the
# growth is under 1 MB.
TABLES = (25_000, 100_000)
MEMBERS = (20_000, 80_000)
MEMORY_PER_ITEMS_BOUND = 3 << 10  # kB
_MEASURED = """
import resource, subprocess, sys
status = subprocess.run(sys.argv[1:]).returncode
sys.stderr.write(f"\\npeak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(status)
"""


@dataclass
class Finished:
    status: int
    stdout: str
    stderr: str
    peak_rss_kb: int


def run(*argv: object, timeout: float = TIME_BOUND) -> Finished:
    """Run *argv* in a measured child process; fail the test when it is still running after *timeout*."""
    process = subprocess.Popen([sys.executable, "-c", _MEASURED, *map(str, argv)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{' '.join(map(str, argv[-3:]))} still running after {timeout} s")
    stderr, _, rss = stderr.rpartition("peak-rss-kb ")
    return Finished(process.returncode, stdout, stderr.strip(), int(rss))


def verify(path: Path, *options: str) -> Finished:
    return run(*BACKUP, "verify", path, *options)


def probe(directory: Path, *options: str) -> Finished:
    return run(*PROBE, "-f", directory / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop",
               "--timezone", "Europe/Paris", "--now", NOW.isoformat(), "--verify", "dump", *options)


def assert_within_memory_bound(finished: Finished, baseline: Finished) -> None:
    extra = finished.peak_rss_kb - baseline.peak_rss_kb
    assert extra < MEMORY_BOUND, f"{extra >> 10} MB more than the real archive"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, Finished]:
    """Peak RSS of verify and of the probe on the real iTop archive."""
    directory = tmp_path_factory.mktemp("baseline")
    place(directory / NAME, ITOP_ARCHIVE.read_bytes())
    runs = {"verify": verify(ITOP_ARCHIVE), "probe": probe(directory)}
    assert [finished.status for finished in runs.values()] == [0, 0]
    return runs


@pytest.mark.parametrize("trap", HOSTILE)
def test_a_hostile_archive_fails_verify_and_the_probe_with_one_line(tmp_path, baseline, trap):
    data, reason = HOSTILE[trap]()
    archive = place(tmp_path / NAME, data)

    verified = verify(archive)
    probed = probe(tmp_path)

    assert (verified.status, verified.stderr) == (1, f"itop-backup verify: CRITICAL: {reason}")
    assert probed.status == 2
    assert probed.stdout.splitlines()[0].split(" | ")[0] == (
        f"ITOP_BACKUP CRITICAL - {NAME} fails dump verification: {reason}")
    assert_within_memory_bound(verified, baseline["verify"])
    assert_within_memory_bound(probed, baseline["probe"])


def test_a_vanished_table_with_a_newline_in_its_name_stays_on_the_status_line(tmp_path):
    renamed = itop_member("itop-dump.sql").replace(b"\nCREATE TABLE `brand` (",
                                                   b"\nCREATE TABLE `brand\nITOP_BACKUP OK` (")
    place(tmp_path / "itop-2026-11-25_23_30.tar.gz", gzip_members(itop_tar(dump=renamed)),
          WRITTEN - timedelta(days=1))
    assert check(tmp_path, "--verify", "dump", now=NOW - timedelta(days=1)).exit_code == 0
    place_archive(tmp_path / NAME, WRITTEN)

    run = check(tmp_path, "--verify", "dump")

    assert run.exit_code == 1
    assert run.status_line == (f"ITOP_BACKUP WARNING - {NAME}: 1 table vanished since "
                               "itop-2026-11-25_23_30.tar.gz: 'brand\\nITOP_BACKUP OK'")


def test_restore_refuses_the_looping_archive_before_touching_anything(tmp_path, mariadb_server):
    data, reason = HOSTILE["PAX size=-1536"]()
    archive = place(tmp_path / NAME, data)

    restored = run(*BACKUP, "restore", archive, *server_options(mariadb_server),
                   "--db-name", "cib_test_never_created")

    assert (restored.status, restored.stderr) == (
        1, f"itop-backup restore: {archive} does not verify, nothing was touched: {reason}")


def test_the_symlink_chain_is_a_real_trap_for_an_extractor_that_follows_links(tmp_path):
    data, _ = HOSTILE["symlink chain"]()
    archive = place(tmp_path / NAME, data)
    (tmp_path / "target").mkdir()

    with tarfile.open(archive) as unpacked:
        unpacked.extractall(tmp_path / "target", filter="fully_trusted")

    assert (tmp_path / "x").read_bytes() == b"escaped"  # beside the target, not inside it


def test_links_that_stay_inside_and_are_not_gone_through_still_verify(tmp_path):
    links = (member("production-modules/current", kind=tarfile.SYMTYPE, linkname="v2"),
             member("production-modules/v2/module.php", b"<?php"),
             member("production-modules/latest", kind=tarfile.SYMTYPE, linkname="current"),
             member("production-modules/copy.php", kind=tarfile.LNKTYPE,
                    linkname="production-modules/v2/module.php"))
    archive = place(tmp_path / NAME, gzip_members(itop_tar(extra=links)))

    assert verify(archive).status == 0


def _write_gzip(path: Path, parts) -> Path:
    """Write the tar pieces yielded by *parts* gzip'd to *path*, never holding them all."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as output:
        for part in parts:
            output.write(compressor.compress(part))
        output.write(compressor.flush())
    os.utime(path, (WRITTEN.timestamp(), WRITTEN.timestamp()))
    return path


def assert_no_memory_per_item(small: Finished, large: Finished, items: int, cost: str) -> None:
    """*large* holds *items* more items than *small*; keeping each would cost *cost* (~100 bytes)."""
    extra = large.peak_rss_kb - small.peak_rss_kb
    assert extra < MEMORY_PER_ITEMS_BOUND, (
        f"{extra} kB more for {items} more items: memory grows with them ({cost} each if kept)")


def _many_members(path: Path, count: int) -> Path:
    empty = header("production-modules/" + "m" * 80)

    def parts():
        yield member("config-itop.php", itop_member("config-itop.php"))
        for start in range(0, count, 10_000):
            yield empty * min(10_000, count - start)
        yield member("itop-dump.sql", itop_member("itop-dump.sql")) + END_OF_ARCHIVE

    return _write_gzip(path, parts())


def test_members_beyond_those_listed_cost_no_memory_in_verify(tmp_path, baseline):
    fewer, count = MEMBERS
    (tmp_path / "small").mkdir()
    small = verify(_many_members(tmp_path / "small" / NAME, fewer), "-v")
    verified = verify(_many_members(tmp_path / NAME, count), "-v")

    assert (small.status, verified.status) == (0, 0)
    assert f"  container: tar.gz, 1 gzip member; {count + 2} members" in verified.stdout.splitlines()
    assert f"    and {count + 2 - 5000} more members, not listed" in verified.stdout.splitlines()
    assert_no_memory_per_item(small, verified, count - fewer, "a Member")
    assert_within_memory_bound(verified, baseline["verify"])


def _many_tables(directory: Path, count: int) -> Path:
    """An archive whose dump creates *count* tables, padded by one long INSERT line to the same
    size whatever *count* (that of the most tables of TABLES, past INFLATE_SIZE): the pieces
    inflated are then as many and as large (4 MiB), and only what is kept per table can make
    the peak memory differ."""
    def creates(number: int) -> list[bytes]:
        return [b"CREATE TABLE `t%d` (id int);\n" % table for table in range(number)]

    def parts():
        yield member("config-itop.php", itop_member("config-itop.php"))
        head, tail = b"INSERT INTO `t0` VALUES (", b"0);\n-- Dump completed on 2026-11-26 23:34:00\n"
        most = sum(map(len, creates(max(TABLES))))
        dump = [b"-- MariaDB dump\n"] + creates(count)
        padding = most + INFLATE_SIZE - sum(map(len, dump))
        dump.append(head + b"0," * ((padding - len(head) - len(tail)) // 2) + tail)
        size = sum(map(len, dump))
        yield header("itop-dump.sql", size)
        for start in range(0, len(dump), 100_000):
            yield b"".join(dump[start:start + 100_000])
        yield bytes(-size % 512) + END_OF_ARCHIVE

    directory.mkdir(exist_ok=True)
    return _write_gzip(directory / NAME, parts())


def test_create_table_statements_cost_no_memory_each_in_verify_the_probe_and_the_history(
        tmp_path, baseline, private_history, monkeypatch):
    fewer, count = TABLES
    runs = {}
    for tables, directory in ((fewer, tmp_path / "small"), (count, tmp_path)):
        monkeypatch.setenv("CHECK_ITOP_BACKUP_HISTORY", str(directory / "history.sqlite"))
        archive = _many_tables(directory, tables)
        runs[tables] = (verify(archive), probe(directory),
                       probe(directory))  # the second probe reads the verification back from the history
    verified, probed, probed_again = runs[count]

    assert [finished.status for finished in runs[fewer] + runs[count]] == [0] * 6
    assert f"  tables: {count}" in verified.stdout.splitlines()
    assert probed_again.stdout == probed.stdout
    for small, large in zip(runs[fewer], runs[count]):
        assert_no_memory_per_item(small, large, count - fewer, "a table name")
    assert_within_memory_bound(verified, baseline["verify"])
    assert_within_memory_bound(probed, baseline["probe"])
    assert_within_memory_bound(probed_again, baseline["probe"])
    with sqlite3.connect(private_history) as history:
        (stored,) = history.execute("SELECT length(details) FROM verifications").fetchone()
    assert stored < 100_000  # the first 5000 table names and the count, not 100000 names


def test_a_zip_symlink_with_a_huge_target_is_critical_without_reading_it(tmp_path, baseline):
    path = tmp_path / "itop-2016-01-01.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config-itop.php", itop_member("config-itop.php"))
        archive.writestr("itop-dump.sql", itop_member("itop-dump.sql"))
        link = zipfile.ZipInfo("production-modules/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        link.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(link, "w") as target:
            for _ in range(256):
                target.write(bytes(1 << 20))

    verified = verify(path)

    assert (verified.status, verified.stderr) == (
        1, "itop-backup verify: CRITICAL: symlink member 'production-modules/link' has a target of "
           "268435456 bytes, longer than a path can be (4096)")
    assert_within_memory_bound(verified, baseline["verify"])


@pytest.mark.parametrize(("count", "zip64", "size"), [(500_000, False, "45.3 MiB"),
                                                    (70_000, True, "6.3 MiB")])
def test_a_zip_with_too_many_members_is_critical_before_its_directory_is_parsed(
        tmp_path, baseline, count, zip64, size):
    path = tmp_path / "itop-2016-01-01.zip"
    path.write_bytes(zip_of_empty_members(count, zip64))

    verified = verify(path)

    assert (verified.status, verified.stderr) == (
        1, f"itop-backup verify: CRITICAL: zip central directory of {size} is larger than 4.0 MiB: "
           "too many members")
    assert_within_memory_bound(verified, baseline["verify"])
