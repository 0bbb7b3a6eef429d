"""codec.py's libraries, and zlib in their place when they cannot be imported (a platform
without their wheels): the same archives and verdicts, and one ``-v`` line saying so."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest

from tests.archive_corpus import BROKEN, ITOP_ARCHIVE, itop_member

# what a platform without the wheels looks like to Python: both imports fail
WITHOUT_WHEELS = """import sys
class WithoutWheels:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("isal", "zlib_ng"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, WithoutWheels())
"""
BACKUP = "from check_itop_backup.cli.backup import backup_main; backup_main()"
NO_ISAL = ("itop-backup verify: INFO: isal cannot be imported (No module named 'isal'): "
           "zlib is used instead, slower")


def verify(path, without_wheels: bool) -> subprocess.CompletedProcess:
    code = (WITHOUT_WHEELS if without_wheels else "") + BACKUP
    return subprocess.run([sys.executable, "-c", code, "verify", "-v", str(path)],
                          capture_output=True, text=True, check=False)


def runner_archive(path, without_wheels: bool, level: int) -> None:
    """Write our runner's archive of the real iTop dump to *path*, in a process of its own."""
    code = (WITHOUT_WHEELS if without_wheels else "") + (
        "import io, sys; from tests.archive_corpus import itop_member, write_runner_archive\n"
        "with open(sys.argv[1], 'wb') as output:\n"
        "    write_runner_archive(output, io.BytesIO(itop_member('itop-dump.sql')).read,"
        " level=int(sys.argv[2]), chunk_size=64 << 10)\n"
        "print([name for name in ('isal', 'zlib_ng') if sys.modules.get(name)])")
    written = subprocess.run([sys.executable, "-c", code, str(path), str(level)],
                             capture_output=True, text=True, check=True)
    assert written.stdout.strip() == ("[]" if without_wheels else
                                      "['isal']" if level < 4 else "['isal', 'zlib_ng']")


def timing_aside(stdout: str) -> str:
    return "\n".join(line for line in stdout.splitlines() if not line.startswith("  verified in "))


@pytest.mark.parametrize("level", [2, 6])
def test_without_the_wheels_the_runner_archive_holds_the_same_members_and_verifies_alike(tmp_path, level):
    paths = {without: tmp_path / str(without) / "runner.tar.gz" for without in (False, True)}
    for without, path in paths.items():
        path.parent.mkdir()
        runner_archive(path, without, level)
    contents = []
    for path in paths.values():
        with tarfile.open(path, "r:gz") as archive:
            contents.append([(member.name, archive.extractfile(member).read() if member.isfile() else None)
                             for member in archive.getmembers()])
    assert contents[0] == contents[1]
    assert contents[0][-1] == ("itop-dump.sql", itop_member("itop-dump.sql"))
    with_wheels, without_wheels = (verify(path, False) for path in paths.values())
    assert with_wheels.returncode == without_wheels.returncode == 0
    assert (timing_aside(with_wheels.stdout).replace(str(paths[False]), "ARCHIVE")
            == timing_aside(without_wheels.stdout).replace(str(paths[True]), "ARCHIVE"))
    assert "sha256" in with_wheels.stdout


@pytest.mark.parametrize("damage", ["good", "truncated", "one byte flipped", "trailing garbage",
                                    "tar cut inside the dump"])
def test_without_isal_verify_gives_the_same_report_and_one_v_line_saying_so(tmp_path, damage):
    path = tmp_path / "itop-2026-11-26_23_30.tar.gz"
    path.write_bytes(ITOP_ARCHIVE.read_bytes() if damage == "good" else BROKEN[damage]()[0])
    with_isal, without_isal = verify(path, False), verify(path, True)
    assert with_isal.returncode == without_isal.returncode == (0 if damage == "good" else 1)
    assert timing_aside(with_isal.stdout) == timing_aside(without_isal.stdout)
    assert without_isal.stderr.splitlines()[0] == NO_ISAL
    assert without_isal.stderr.replace(NO_ISAL + "\n", "", 1) == with_isal.stderr
    assert "cannot be imported" not in with_isal.stderr


def test_the_probe_without_isal_gives_the_same_verdict_and_says_so_at_vv(tmp_path):
    path = tmp_path / "itop-2026-11-26_23_30.tar.gz"
    path.write_bytes(ITOP_ARCHIVE.read_bytes())
    path.chmod(0o600)
    os.utime(path, (1_795_000_000, 1_795_000_000))
    argv = ["-f", str(path), "--now", "2026-11-18T12:00:00+00:00", "--verify", "dump", "-vv"]
    probe = "from check_itop_backup.cli.check import check_main; check_main()"
    runs = [subprocess.run([sys.executable, "-c", prefix + probe, *argv, "--history", tmp_path / f"{n}.db"],
                           capture_output=True, text=True, check=False)
            for n, prefix in enumerate(("", WITHOUT_WHEELS))]
    assert runs[0].returncode == runs[1].returncode == 0
    assert runs[0].stdout.splitlines()[0] == runs[1].stdout.splitlines()[0]
    assert "cannot be imported" not in runs[0].stdout + runs[0].stderr
    assert ("isal cannot be imported (No module named 'isal'): zlib is used instead, "
            "slower") in runs[1].stdout + runs[1].stderr


def test_a_foreign_gzip_stream_that_isal_reads_differently_keeps_zlibs_verdict(tmp_path):
    """A member header with reserved flag bits: zlib refuses it, whatever ISA-L does."""
    data = bytearray(ITOP_ARCHIVE.read_bytes())
    data[3] |= 0x80
    path = tmp_path / "itop-2026-11-26_23_30.tar.gz"
    path.write_bytes(bytes(data))
    with_isal, without_isal = verify(path, False), verify(path, True)
    assert with_isal.returncode == 1
    assert timing_aside(with_isal.stdout) == timing_aside(without_isal.stdout)
    assert "gzip stream corrupt after byte 0: unknown header flags set" in with_isal.stdout
