"""Deep verification of archives: the real iTop archive, other good shapes, and a corpus of broken ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from check_itop_backup.archive.dumpscan import DumpScanner
from check_itop_backup.archive.inspect import verify_archive
from check_itop_backup.archive.tar import parse_header
from check_itop_backup.cli.backup import backup_main
from tests.archive_corpus import (
    BROKEN,
    END_OF_ARCHIVE,
    ITOP_ARCHIVE,
    gzip_members,
    header,
    itop_member,
    itop_tar,
    member,
    padded,
    write_runner_archive,
    zip_archive,
)

DUMP_SHA256 = "9362c275848bea0f3d358ee35198c650c162ef7e6b1077cc1fb7017ebbd908b1"


def write(tmp_path, data: bytes, name: str = "itop-2026-11-26.tar.gz") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_the_real_itop_archive_verifies_at_archive_level():
    report = verify_archive(str(ITOP_ARCHIVE), "archive")
    assert (report.state, report.reached) == ("ok", "archive")
    assert report.reason == "2 members intact, itop-dump.sql (1.4 MiB) and config-itop.php present"
    assert [(m.name, m.size) for m in report.members] == [("config-itop.php", 11502),
                                                          ("itop-dump.sql", 1424757)]


def test_the_real_itop_archive_verifies_at_dump_level_with_its_tables_and_digest():
    report = verify_archive(str(ITOP_ARCHIVE), "dump")
    assert (report.state, report.reached) == ("ok", "dump")
    assert report.reason == "itop-dump.sql complete (1.4 MiB, 220 tables), config-itop.php parses"
    assert report.dump_sha256 is None  # nothing to compare it with in iTop's own archives
    assert report.tables[:3] == ("applicationsolution", "attachment", "brand")
    assert len(report.tables) == 220 and report.dump_size == 1424757
    assert report.details()["tables"] == list(report.tables)


@pytest.mark.parametrize("damage", sorted(BROKEN))
def test_a_broken_archive_is_critical_with_the_reason(tmp_path, damage):
    data, reason = BROKEN[damage]()
    report = verify_archive(write(tmp_path, data), "dump")
    assert report.state == "critical"
    if reason.endswith("..."):
        assert report.reason.startswith(reason[:-3])
    else:
        assert report.reason == reason


def test_a_failure_inside_the_dump_still_reached_the_archive_level(tmp_path):
    data, _ = BROKEN["dump without trailer"]()
    report = verify_archive(write(tmp_path, data), "dump")
    assert report.reached == "archive"
    assert verify_archive(write(tmp_path, data), "archive").state == "ok"


def test_an_unsafe_member_fails_already_at_archive_level(tmp_path):
    data, reason = BROKEN["traversal name"]()
    report = verify_archive(write(tmp_path, data), "archive")
    assert (report.state, report.reached, report.reason) == ("critical", "stat", reason)


def test_a_symlink_that_stays_inside_the_archive_is_accepted(tmp_path):
    link = member("production-modules/current", kind=tarfile.SYMTYPE, linkname="mymod-1.2")
    report = verify_archive(write(tmp_path, gzip_members(itop_tar(extra=(link,)))), "dump")
    assert report.state == "ok"


def test_multi_member_gzip_as_our_runner_writes_verifies_with_every_table(tmp_path):
    tar = itop_tar()
    # a stored first member for the first header, then members cut at odd places inside the dump
    cuts = [0, 512, 20_000, 20_001, 700_000, 1_000_333, len(tar)]
    first = gzip.compress(tar[:cuts[1]], compresslevel=0, mtime=0)
    data = first + gzip_members(*(tar[a:b] for a, b in zip(cuts[1:], cuts[2:])))
    report = verify_archive(write(tmp_path, data), "dump")
    assert (report.state, report.gzip_members) == ("ok", 6)
    assert report.dump_sha256 == DUMP_SHA256 == hashlib.sha256(itop_member("itop-dump.sql")).hexdigest()
    assert report.tables == verify_archive(str(ITOP_ARCHIVE), "dump").tables


@pytest.mark.parametrize("piece", [3, 100, 4096])
def test_the_dump_scanner_finds_statements_split_across_any_pieces(piece):
    dump = itop_member("itop-dump.sql")
    whole, pieces = DumpScanner(), DumpScanner(with_sha256=False)
    whole.write(dump, 0, len(dump))
    for start in range(0, len(dump), piece):
        pieces.write(dump, start, min(len(dump), start + piece))
    whole.close()
    assert list(pieces.tables) == list(whole.tables) and len(whole.tables) == 220
    assert pieces.has_trailer() and pieces.size == len(dump)


def test_the_dump_scanner_finds_statements_among_short_lines_too():
    """A dump without extended inserts (one short line per row) takes the searching path."""
    dump = b"".join(b"CREATE TABLE `t%d` (\n  `id` int\n);\n" % table
                    + b"INSERT INTO `t%d` VALUES (1);\n" % table * 300 for table in range(40))
    scanner = DumpScanner(with_sha256=False)
    scanner.write(b"\n" + dump, 0, len(dump) + 1)
    assert list(scanner.tables) == [f"t{table}" for table in range(40)]


def test_a_zip_archive_from_old_itop_verifies(tmp_path):
    data = zip_archive({"config-itop.php": itop_member("config-itop.php"),
                        "itop-dump.sql": itop_member("itop-dump.sql")})
    report = verify_archive(write(tmp_path, data, "itop-2016-01-01.zip"), "dump")
    assert (report.state, report.container, report.reached) == ("ok", "zip", "dump")


def test_gnu_long_names_are_read(tmp_path):
    name = "production-modules/" + "very-long-module-name/" * 6 + "module.php"
    report = verify_archive(write(tmp_path, gzip_members(itop_tar(extra=(member(name, b"<?php"),)))), "dump")
    assert report.state == "ok"
    assert name in [m.name for m in report.members]


def test_a_base256_size_is_a_warning_because_itop_cannot_read_it(tmp_path):
    odd = header("production-modules/x.bin", 3, base256=True) + padded(b"abc")
    report = verify_archive(write(tmp_path, gzip_members(itop_tar(extra=(odd,)))), "dump")
    assert (report.state, report.reached) == ("warning", "dump")
    assert report.reason == ("member production-modules/x.bin stores its size in GNU base-256 form, "
                             "which iTop's restore cannot read")


def test_pax_headers_are_read_and_are_a_warning(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, data in (("config-itop.php", itop_member("config-itop.php")),
                           ("production-modules/modulé.php", b"<?php"),
                           ("itop-dump.sql", itop_member("itop-dump.sql"))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    report = verify_archive(write(tmp_path, buffer.getvalue()), "dump")
    assert (report.state, report.reason) == ("warning", "archive uses PAX extended headers, "
                                                        "which iTop's restore skips")
    assert "production-modules/modulé.php" in [m.name for m in report.members]


def manifest(tables: tuple[dict, ...] = (), **dump) -> bytes:
    data = {"tool": "check_itop_backup", "tables": list(tables), "dump": dump}
    return member("manifest.json", json.dumps(data).encode())


def runner_archive(tar: bytes) -> bytes:
    """Our runner's shape: the first header in its own small gzip member, then the rest."""
    return gzip_members(tar[:512], tar[512:])


def test_a_manifest_that_matches_the_dump_verifies(tmp_path):
    tar = itop_tar(end=manifest(TABLES, size=1424757, sha256=DUMP_SHA256) + END_OF_ARCHIVE)
    report = verify_archive(write(tmp_path, runner_archive(tar)), "dump")
    assert (report.state, report.dump_sha256) == ("ok", DUMP_SHA256)


TABLES = ({"name": "brand", "type": "BASE TABLE", "rows": 3}, {"name": "view_brand", "type": "VIEW"})


@pytest.mark.parametrize("tables, dump, reason", [
    (TABLES, {"size": 1424756, "sha256": DUMP_SHA256},
     "itop-dump.sql is 1424757 bytes but manifest.json says 1424756"),
    (TABLES, {"size": 1424757, "sha256": "0" * 64},
     "itop-dump.sql does not match the SHA-256 in manifest.json"),
    (TABLES + ({"name": "ticket_lost", "type": "BASE TABLE", "rows": 0},),
     {"size": 1424757, "sha256": DUMP_SHA256},
     "itop-dump.sql lacks 1 of the tables listed in manifest.json: ticket_lost"),
])
def test_a_manifest_that_disagrees_with_the_dump_is_critical(tmp_path, tables, dump, reason):
    tar = itop_tar(end=manifest(tables, **dump) + END_OF_ARCHIVE)
    report = verify_archive(write(tmp_path, runner_archive(tar)), "dump")
    assert (report.state, report.reason) == ("critical", reason)


def test_a_member_over_8_gib_in_itops_12_digit_form_is_read():
    # The walk skips a member by its parsed size whatever the size: the 12-digit field is what
    # differs above 8 GiB (checked on the reader's header parser, not by inflating 8 GiB).
    size = 8 << 30
    big_header = header("production-modules/huge.bin", size)
    assert big_header[124:136] == b"100000000000"  # 12 octal digits, no NUL: iTop's form
    parsed = parse_header(big_header, 0)
    assert (parsed.name, parsed.size, parsed.base256_size) == ("production-modules/huge.bin", size, False)


def run_verify(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        backup_main(["verify", *argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_itop_backup_verify_prints_the_report_and_exits_0(capsys):
    code, out, err = run_verify(capsys, str(ITOP_ARCHIVE))
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == f"{ITOP_ARCHIVE}: OK at dump level (dump level asked)"
    assert lines[1:5] == ["  itop-dump.sql complete (1.4 MiB, 220 tables), config-itop.php parses",
                          "  container: tar.gz, 1 gzip member; 2 members",
                          "  itop-dump.sql: 1.4 MiB",
                          "  tables: 220"]


def test_itop_backup_verify_lists_members_and_tables_when_verbose(capsys):
    code, out, _ = run_verify(capsys, "--level", "dump", "-v", str(ITOP_ARCHIVE))
    assert code == 0
    assert "    member config-itop.php (11.2 KiB)" in out.splitlines()
    assert "    table priv_app_preferences: 1 rows, 58 B" in out.splitlines()  # with its counts


def test_itop_backup_verify_exits_1_with_the_reason_on_a_broken_archive(tmp_path, capsys):
    data, reason = BROKEN["dump without trailer"]()
    path = write(tmp_path, data)
    code, out, err = run_verify(capsys, path)
    assert code == 1
    assert out.splitlines()[0] == f"{path}: CRITICAL at archive level (dump level asked)"
    assert err == f"itop-backup verify: CRITICAL: {reason}\n"
    assert run_verify(capsys, "--level", "archive", path)[0] == 0


def test_itop_backup_verify_exits_1_when_the_file_cannot_be_read(tmp_path, capsys):
    code, out, err = run_verify(capsys, str(tmp_path / "missing.tar.gz"))
    assert (code, out) == (1, "")
    missing = tmp_path / "missing.tar.gz"
    assert err == f"itop-backup verify: cannot read {missing}: No such file or directory\n"


def test_an_archive_written_by_our_runners_tar_writer_verifies_against_its_manifest(tmp_path):
    dump = io.BytesIO(itop_member("itop-dump.sql"))
    path = tmp_path / "itop-2026-11-26_23_30.tar.gz"
    with open(path, "wb") as output:
        write_runner_archive(output, dump.read, workers=2, chunk_size=64 << 10)

    report = verify_archive(str(path), "dump")

    assert (report.state, report.dump_sha256) == ("ok", DUMP_SHA256)
    assert report.gzip_members > 10
    assert [m.name for m in report.members] == ["config-itop.php", "manifest.json", "itop-dump.sql"]
