"""Where the runner's manifest travels: nothing of it lands in the iTop root after iTop's own restore.

iTop 3.2's restore (``DBRestore::RestoreFromCompressedBackup``) extracts the archive with
Archive_Tar, which skips PAX ``x``/``g`` headers, then moves every remaining regular file whose
name is not ``config-itop.php``, ``itop-dump.sql``, ``delta.xml`` or ``production-modules`` (and
that is not under ``production-modules``) to ``<itop-root>/<name>``. The tests run
that code itself (tests/data/itop/restore_files.php) and check the rule on the raw headers.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from check_itop_backup.archive.inspect import verify_archive
from check_itop_backup.archive.layout import PAX_GLOBAL_NAME
from check_itop_backup.archive.tar import parse_header, pax_records
from check_itop_backup.archive.writer import PAX_GLOBAL_TYPE, TarGzWriter, pax_record
from tests.backup.test_restore import runner_archive, tiny_dump  # noqa: F401 - a fixture

ITOP_RESTORE_FILES = Path(__file__).parents[1] / "data" / "itop" / "restore_files.php"
STANDARD_FILES = ("config-itop.php", "itop-dump.sql", "production-modules", "delta.xml")
EXTRA_FILE = "collectors/ldap/conf/params.local.xml"
DUMP = tiny_dump()


def moved_by_itop(archive: Path) -> list[str]:
    """The members iTop's restore moves to ``<itop-root>/<name>``, by its rule (see above)."""
    data = gzip.decompress(archive.read_bytes())
    moved, offset, long_name = [], 0, None
    while (header := parse_header(data[offset:offset + 512], offset)) is not None:
        body = data[offset + 512:offset + 512 + header.size]
        offset += 512 + -(-header.size // 512) * 512
        if header.type == b"L":
            long_name = body.rstrip(b"\0").decode()
            continue
        name, long_name = long_name or header.name, None
        if header.type in (b"x", b"g") or header.type not in (b"0", b"7"):
            continue  # Archive_Tar skips PAX headers; ListExtraFiles takes regular files only
        if name.rsplit("/", 1)[-1] in STANDARD_FILES or name.startswith("production-modules"):
            continue
        moved.append(name)
    return moved


def global_records(archive: Path) -> dict[str, str]:
    data = gzip.decompress(archive.read_bytes())
    offset, found = 0, {}
    while (header := parse_header(data[offset:offset + 512], offset)) is not None:
        if header.type == b"g":
            found.update(pax_records(data[offset + 512:offset + 512 + header.size]))
        offset += 512 + -(-header.size // 512) * 512
    return found


@pytest.fixture
def runner_archive_path(runner_archive):  # noqa: F811 - test_restore's fixture
    return runner_archive[2]


def old_layout_archive(path: Path) -> Path:
    """An archive as the runner wrote them before: the manifest as a ``manifest.json`` member."""
    dump = DUMP
    manifest = {"format": 1, "tool": "check_itop_backup", "tables": [{"name": "t", "rows": 0}],
                "dump": {"member": "itop-dump.sql", "size": len(dump)}}
    with open(path, "wb") as output:
        writer = TarGzWriter(output, workers=1)
        writer.add_bytes("config-itop.php", b"<?php\n$MySettings = array('db_name' => 'x');\n")
        writer.add_bytes("manifest.json", json.dumps(manifest).encode())
        writer.add_bytes("itop-dump.sql", dump)
        writer.close()
    return path


def itop_root(path: Path) -> Path:
    (path / "conf" / "production").mkdir(parents=True)
    (path / "conf" / "production" / "config-itop.php").write_text("<?php // live\n")
    (path / "data").mkdir()
    return path


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def itop_restores_files(archive: Path, root: Path) -> str:
    run = subprocess.run([shutil.which("php") or "php", str(ITOP_RESTORE_FILES), str(archive), str(root)],
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")
    return run.stdout


def test_itops_restore_of_a_runner_archive_leaves_nothing_new_in_the_itop_root(runner_archive_path, tmp_path):
    root = itop_root(tmp_path / "itop-restored")

    said = itop_restores_files(runner_archive_path, root)

    assert said == f"moved {EXTRA_FILE}\n"
    assert files_under(root) == [EXTRA_FILE, "conf/production/config-itop.php",
                                 "data/production-modules/mymod/module.mymod.php",
                                 "data/production.delta.xml"]
    assert "db_name" in (root / "conf" / "production" / "config-itop.php").read_text()


def test_itops_restore_of_an_old_layout_archive_serves_manifest_json_from_the_root(tmp_path):
    root = itop_root(tmp_path / "itop-restored")

    said = itop_restores_files(old_layout_archive(tmp_path / "old.tar.gz"), root)

    assert said == "moved manifest.json\n"
    assert "manifest.json" in files_under(root)


def test_by_itops_rule_only_the_extra_files_of_a_runner_archive_are_moved(runner_archive_path, tmp_path):
    assert moved_by_itop(runner_archive_path) == [EXTRA_FILE]
    assert moved_by_itop(old_layout_archive(tmp_path / "old.tar.gz")) == ["manifest.json"]


def test_the_manifest_is_a_pax_global_comment_tarfile_reads_and_gnu_tar_ignores(runner_archive_path,
                                                                                 tmp_path):
    manifest = json.loads(global_records(runner_archive_path)["comment"])
    with tarfile.open(runner_archive_path) as archive:
        assert "manifest.json" not in archive.getnames()
        assert json.loads(archive.pax_headers["comment"]) == manifest
        dump = archive.extractfile("itop-dump.sql").read()
    assert manifest["tool"] == "check_itop_backup"
    assert manifest["dump"]["size"] == len(dump)
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == {"audit": 300, "ticket": 300, "titles": None}
    out = tmp_path / "x"
    out.mkdir()
    run = subprocess.run(["tar", "-xzf", str(runner_archive_path), "-C", str(out)], capture_output=True,
                         text=True)
    assert (run.returncode, run.stderr) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == ["collectors", "config-itop.php", "delta.xml",
                                                     "itop-dump.sql", "production-modules"]


def global_manifest_archive(path: Path, size_said: int | None = None) -> Path:
    """An archive whose manifest is a PAX global comment, as the runner writes it."""
    dump = DUMP
    manifest = {"format": 1, "tool": "check_itop_backup", "tables": [{"name": "t", "rows": 0}],
                "dump": {"member": "itop-dump.sql", "size": len(dump) if size_said is None else size_said}}
    records = pax_record("comment", json.dumps(manifest).encode())
    with open(path, "wb") as output:
        writer = TarGzWriter(output, workers=1)
        writer.add_bytes("config-itop.php", b"<?php\n$MySettings = array('db_name' => 'x');\n")
        writer.fill(writer.reserve_member(PAX_GLOBAL_NAME, len(records)), PAX_GLOBAL_NAME, records,
                    PAX_GLOBAL_TYPE)
        writer.add_bytes("itop-dump.sql", dump)
        writer.close()
    return path


def test_verify_checks_the_runners_dump_against_its_global_manifest(runner_archive_path):
    report = verify_archive(str(runner_archive_path), "dump")

    assert (report.state, report.warnings) == ("ok", ())
    assert ("manifest.json", "g") in [(m.name, m.type) for m in report.members]


def test_a_global_manifest_that_disagrees_with_the_dump_is_critical(tmp_path):
    good = verify_archive(str(global_manifest_archive(tmp_path / "good.tar.gz")), "dump")
    bad = verify_archive(str(global_manifest_archive(tmp_path / "bad.tar.gz", size_said=7)), "dump")

    assert (good.state, good.warnings) == ("ok", ())
    assert (bad.state, bad.reason) == ("critical", f"itop-dump.sql is {good.dump_size} bytes but "
                                                   "manifest.json says 7")


def test_verify_still_reads_an_old_layout_manifest(tmp_path):
    report = verify_archive(str(old_layout_archive(tmp_path / "old.tar.gz")), "dump")
    assert report.state == "ok"
    assert [m.name for m in report.members] == ["config-itop.php", "manifest.json", "itop-dump.sql"]


def test_a_git_archive_comment_is_not_taken_for_a_manifest(tmp_path):
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "0123abcd"}) as archive:
        for name, data in (("config-itop.php", b"<?php\n$MySettings = array();\n"),
                           ("itop-dump.sql", DUMP)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "git.tar.gz"
    path.write_bytes(gzip.compress(tar.getvalue()))
    report = verify_archive(str(path), "dump")
    assert (report.state, report.warnings) == ("ok", ())
