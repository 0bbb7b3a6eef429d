"""The streaming tar.gz writer: what tarfile, gzip and GNU tar read back, header bytes iTop needs."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile

import pytest

from check_itop_backup.archive.writer import (
    TarGzWriter,
    needs_own_restore,
    octal_field,
    tar_header,
)


def build(tmp_path, chunk_size=4096, level=2):
    """Write a small archive with every kind of member; return its path and the stream summary."""
    path = tmp_path / f"a{level}.tar.gz"
    with open(path, "wb") as output:
        writer = TarGzWriter(output, level, workers=2, chunk_size=chunk_size, mtime=1_800_000_000)
        writer.add_bytes("config-itop.php", b"<?php $MySettings = array();\n")
        writer.add_directory("production-modules/")
        extra = tmp_path / "params.local.xml"
        extra.write_bytes(b"<params/>" * 1000)
        writer.add_file("collectors/" + "deep/" * 25 + "params.local.xml", str(extra))
        reservation = writer.reserve_member("manifest.json", 40)
        dump = io.BytesIO(b"INSERT INTO t VALUES ('\xf0\x9f\x98\x80');\n" * 3000 + b"-- Dump completed")
        summary = writer.add_stream("itop-dump.sql", dump.read)
        writer.fill(reservation, "manifest.json", b'{"dump_size": %d}' % summary.size + b" " * 20)
        writer.close()
    return path, summary


def test_tarfile_reads_members_in_order_with_their_content(tmp_path):
    path, summary = build(tmp_path)
    with tarfile.open(path, "r:gz") as archive:
        members = archive.getmembers()
        names = [m.name for m in members]
        assert names == ["config-itop.php", "production-modules",
                         "collectors/" + "deep/" * 25 + "params.local.xml", "manifest.json", "itop-dump.sql"]
        assert members[1].isdir()
        assert archive.extractfile(members[2]).read() == b"<params/>" * 1000
        assert archive.extractfile("manifest.json").read().rstrip() == b'{"dump_size": %d}' % summary.size
        dump = archive.extractfile("itop-dump.sql").read()
    assert len(dump) == summary.size == members[4].size
    assert dump.endswith(b"-- Dump completed") and summary.tail.endswith(b"-- Dump completed")
    import hashlib
    assert hashlib.sha256(dump).hexdigest() == summary.sha256


def test_headers_are_old_gnu_with_no_pax_and_the_gzip_stream_is_multi_member(tmp_path):
    path, _ = build(tmp_path)
    raw = gzip.decompress(path.read_bytes())
    assert raw[257:265] == b"ustar  \0"
    with tarfile.open(path, "r:gz") as archive:
        assert archive.pax_headers == {}
        assert all(m.type not in (tarfile.XHDTYPE, tarfile.XGLTYPE) for m in archive.getmembers())
    assert path.read_bytes().count(b"\x1f\x8b\x08") > 1
    assert raw.endswith(b"\0" * 1024) and len(raw) % 512 == 0


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_tar_lists_and_extracts_the_archive(tmp_path):
    path, summary = build(tmp_path, chunk_size=1000)
    listing = subprocess.run(["tar", "-tzf", str(path)], capture_output=True, text=True, check=True)
    assert listing.stdout.splitlines()[-1] == "itop-dump.sql"
    target = tmp_path / "out"
    target.mkdir()
    subprocess.run(["tar", "-xzf", str(path), "-C", str(target)], check=True)
    assert (target / "itop-dump.sql").stat().st_size == summary.size


def test_size_fields_are_octal_up_to_64_gib_then_base_256():
    assert octal_field((8 << 30) - 1, 12) == b"77777777777\0"
    assert octal_field(8 << 30, 12) == b"100000000000"
    assert octal_field((64 << 30) - 1, 12) == b"777777777777"
    assert not needs_own_restore((64 << 30) - 1) and needs_own_restore(64 << 30)
    header = tar_header("itop-dump.sql", 70 << 30, 0)
    assert tarfile.TarInfo.frombuf(header, "utf-8", "strict").size == 70 << 30


def test_a_member_over_8_gib_gets_a_12_digit_octal_size_field():
    # tar_header is what add_file, add_stream and fill write: its 512 bytes are the member's header
    size = (8 << 30) + 1234
    header = tar_header("itop-dump.sql", size, 1_800_000_000)
    assert len(header) == 512
    assert header[124:136] == f"{size:012o}".encode()
    assert tarfile.TarInfo.frombuf(header, "utf-8", "strict").size == size


def test_a_filled_reservation_must_have_the_reserved_size(tmp_path):
    with open(tmp_path / "a.tar.gz", "wb") as output:
        writer = TarGzWriter(output)
        reservation = writer.reserve_member("manifest.json", 10)
        with pytest.raises(ValueError, match="do not fit"):
            writer.fill(reservation, "manifest.json", b"01234567890")
        writer.abort()


@pytest.mark.parametrize("level", range(10))
def test_every_compress_level_writes_the_same_members_that_gzip_and_tarfile_read(tmp_path, level):
    path, summary = build(tmp_path, chunk_size=1000, level=level)
    with tarfile.open(path, "r:gz") as archive:
        assert archive.extractfile("itop-dump.sql").read().endswith(b"-- Dump completed")
        assert archive.getmember("itop-dump.sql").size == summary.size
    assert path.read_bytes().count(b"\x1f\x8b\x08") > 20  # one gzip member per chunk
    if shutil.which("gzip"):
        subprocess.run(["gzip", "-t", str(path)], check=True)


def test_level_0_stores_and_the_dense_levels_write_smaller_archives_than_the_fast_ones(tmp_path):
    sizes = {level: build(tmp_path, chunk_size=1 << 20, level=level)[0].stat().st_size for level in (0, 2, 6)}
    dump_size = build(tmp_path, level=1)[1].size
    assert sizes[0] > dump_size > sizes[2] > sizes[6]
