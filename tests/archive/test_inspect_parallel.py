"""Parallel inflation of archives whose gzip members announce their length (our runner's):
the same reports as the sequential path, for good archives and damaged ones alike."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import struct

import pytest

from check_itop_backup.archive import inspect as verify
from check_itop_backup.archive.inspect import verify_archive
from check_itop_backup.archive.writer import MEMBER_HEADER_SIZE, TarGzWriter, gzip_member, member_length
from tests.archive_corpus import itop_member, itop_tar, member

_LENGTH_FIELD = MEMBER_HEADER_SIZE - 4  # where the "IB" subfield's value starts in a member


def runner_archive() -> bytes:
    """An archive as our runner writes it, in small chunks so that it has many members."""
    output = io.BytesIO()
    writer = TarGzWriter(output, level=6, workers=2, chunk_size=64 << 10, mtime=1_800_000_000)
    writer.add_bytes("config-itop.php", itop_member("config-itop.php"))
    reservation = writer.reserve_member("manifest.json", 200)
    summary = writer.add_stream("itop-dump.sql", io.BytesIO(itop_member("itop-dump.sql")).read)
    manifest = json.dumps({"dump": {"size": summary.size, "sha256": summary.sha256}}).encode()
    writer.fill(reservation, "manifest.json", manifest.ljust(200))
    writer.close()
    return output.getvalue()


def member_offsets(data: bytes) -> list[int]:
    """Where each gzip member starts, following the lengths the members announce."""
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        offset += member_length(data[offset:offset + MEMBER_HEADER_SIZE])
    return offsets


@pytest.fixture
def inflated(monkeypatch) -> list[bool]:
    """Record, for each member inflated on the pool (in completion order), whether it inflated to its end."""
    results: list[bool] = []
    inflate = verify._inflate_member

    def spy(data: bytes) -> bytes | None:
        piece = inflate(data)
        results.append(piece is not None)
        return piece

    monkeypatch.setattr(verify, "_inflate_member", spy)
    return results


def both_ways(monkeypatch, tmp_path, data: bytes) -> tuple[verify.VerificationReport, ...]:
    """Verify *data* in parallel, then with member lengths ignored; return both reports, timing aside."""
    path = tmp_path / "itop-2026-11-26_23_30.tar.gz"
    path.write_bytes(data)
    parallel = verify_archive(str(path), "dump")
    with monkeypatch.context() as patch:
        patch.setattr(verify, "member_length", lambda header: None)
        sequential = verify_archive(str(path), "dump")
    return tuple(dataclasses.replace(report, seconds=0.0) for report in (parallel, sequential))


def test_a_runner_archive_is_inflated_in_parallel_with_the_sequential_report(monkeypatch, tmp_path, inflated):
    data = runner_archive()
    parallel, sequential = both_ways(monkeypatch, tmp_path, data)
    assert parallel == sequential
    assert (parallel.state, parallel.gzip_members) == ("ok", len(member_offsets(data)))
    assert parallel.dump_sha256 is not None and len(parallel.tables) == 220
    assert inflated == [True] * parallel.gzip_members


def _flip(position: int):
    def damage(data: bytearray, offsets: list[int]) -> bytes:
        data[offsets[len(offsets) // 2] + position] ^= 0xFF
        return bytes(data)
    return damage


def _announce(delta: int):
    def damage(data: bytearray, offsets: list[int]) -> bytes:
        field = offsets[len(offsets) // 2] + _LENGTH_FIELD
        (length,) = struct.unpack_from("<I", data, field)
        struct.pack_into("<I", data, field, length + delta)
        return bytes(data)
    return damage


def _reencoded(data: bytearray, offsets: list[int]) -> bytes:
    """The middle member written by a foreign gzip (no length subfield)."""
    start, end = offsets[len(offsets) // 2], offsets[len(offsets) // 2 + 1]
    return bytes(data[:start]) + gzip.compress(gzip.decompress(data[start:end]), mtime=0) + bytes(data[end:])


CORRUPT = "gzip stream corrupt after byte "
DAMAGE = {
    "a flipped byte inside a middle member": (_flip(MEMBER_HEADER_SIZE + 100), CORRUPT),
    "a flipped CRC-32 of a member": (_flip(-5), CORRUPT),  # the one before the middle one
    "truncated inside a member": (lambda data, offsets: bytes(data[:offsets[len(offsets) // 2] + 1000]),
                                  "gzip stream truncated: "),
    "truncated at a member boundary": (lambda data, offsets: bytes(data[:offsets[len(offsets) // 2]]),
                                       "tar stream ends inside member itop-dump.sql: "),
    "trailing garbage": (lambda data, offsets: bytes(data) + b"garbage!",
                         "trailing garbage after the gzip stream at byte "),
    "a member length 1 short": (_announce(-1), ""),
    "a member length 1 long": (_announce(1), ""),
    "a member length beyond the end of the file": (_announce(1 << 24), ""),
    "a member length of 2 GiB and more": (_flip(_LENGTH_FIELD + 3), ""),
    "a flipped low byte of a member length": (_flip(_LENGTH_FIELD), ""),
    "a foreign member in the middle": (_reencoded, ""),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_runner_archive_gets_the_sequential_verdict_word_for_word(monkeypatch, tmp_path, damage):
    """A member length that lies breaks no gzip reader, so the archive stays OK; the rest is CRITICAL."""
    spoil, reason = DAMAGE[damage]
    data = runner_archive()
    parallel, sequential = both_ways(monkeypatch, tmp_path, spoil(bytearray(data), member_offsets(data)))
    assert parallel == sequential
    if reason:
        assert (parallel.state, parallel.reason[:len(reason)]) == ("critical", reason)
    else:
        assert parallel.state == "ok" and parallel.dump_sha256 is not None


@pytest.mark.parametrize("delta", [-1, 1])
def test_a_member_whose_length_lies_is_caught_and_read_sequentially(monkeypatch, tmp_path, inflated, delta):
    data = runner_archive()
    offsets = member_offsets(data)
    parallel, _ = both_ways(monkeypatch, tmp_path, _announce(delta)(bytearray(data), offsets))
    assert parallel.state == "ok" and parallel.gzip_members == len(offsets)
    assert False in inflated  # the lying member did not go through


def test_a_member_that_inflates_beyond_the_pool_limit_is_read_sequentially(monkeypatch, tmp_path, inflated):
    big = member("production-modules/zeros.bin", bytes(2 * verify.INFLATE_SIZE))
    tar = itop_tar(extra=(big,))
    parts = (tar[:20_000], tar[20_000:20_000 + len(big)], tar[20_000 + len(big):])
    parallel, sequential = both_ways(monkeypatch, tmp_path, b"".join(gzip_member(part, 6) for part in parts))
    assert parallel == sequential and (parallel.state, parallel.gzip_members) == ("ok", 3)
    assert inflated.count(False) == 1  # the big one; those after it are read again, sequentially
