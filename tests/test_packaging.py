"""The sdist is complete: it holds every file of the source tree, the AGPL text its
metadata names and the changelog; setuptools warns of nothing while building it; and tests run
from the unpacked sdist, against its own copy of the package, pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
GENERATED = re.compile(r"PKG-INFO|check_itop_backup\.egg-info/.*")  # what the sdist adds
NOT_SOURCE = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
# From the unpacked sdist: tests that read contrib/, README.rst and tests/data, and the doctests.
# Not this file (it would build again), nor the Zabbix frontend test (it needs a file outside).
# The doctests and the probe's CLI tests (they read tests/data): that the sdist holds every file
# is test_the_sdist_holds_every_source_file_and_only_adds_its_metadata's job.
FROM_SDIST = ["check_itop_backup", "tests/cli/test_check.py"]


def source_files() -> set[str]:
    """The files of the source tree: those git tracks or would (a checkout), else every file (an
    unpacked sdist)."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True)
        return set(listed.stdout.splitlines()) - {".gitignore"}
    found = set()
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [d for d in subdirectories if d not in NOT_SOURCE and not d.endswith(".egg-info")]
        found.update(os.path.relpath(os.path.join(directory, name), ROOT) for name in files)
    return {name for name in found if not GENERATED.fullmatch(name)}


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The build's output and the sdist unpacked."""
    out = tmp_path_factory.mktemp("dist")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out),
                            str(ROOT)], capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (archive,) = out.glob("check_itop_backup-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return built, out / archive.name[:-len(".tar.gz")]


def test_the_sdist_holds_every_source_file_and_only_adds_its_metadata(sdist):
    _, unpacked = sdist
    packed = {str(path.relative_to(unpacked)) for path in unpacked.rglob("*") if path.is_file()}

    assert sorted(source_files() - packed) == []
    assert sorted(name for name in packed - source_files() if not GENERATED.fullmatch(name)) == []
    assert {"LICENSE", "CHANGELOG.rst", "contrib/systemd/itop-backup.service",
            "tests/data/itop-2026-11-26.tar.gz"} <= packed


def test_setuptools_warns_of_nothing(sdist):
    built, _ = sdist

    assert [line for line in (built.stdout + built.stderr).splitlines() if "warn" in line.lower()] == []


def test_the_license_is_the_agpl_the_metadata_names(sdist):
    _, unpacked = sdist
    metadata = (unpacked / "PKG-INFO").read_text()
    text = (unpacked / "LICENSE").read_text()

    assert "License: AGPL-3.0-or-later" in metadata or "License-Expression: AGPL-3.0-or-later" in metadata
    assert text.split("\n", 2)[:2] == ["                    GNU AFFERO GENERAL PUBLIC LICENSE",
                                       "                       Version 3, 19 November 2007"]
    assert "13. Remote Network Interaction; Use with the GNU General Public License." in text
    assert text.rstrip().endswith("<http://www.gnu.org/licenses/>.")


def test_tests_run_from_the_unpacked_sdist_pass(sdist):
    _, unpacked = sdist
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    imported = subprocess.run([sys.executable, "-c", "import check_itop_backup as c; print(c.__file__)"],
                              cwd=unpacked, capture_output=True, text=True, env=env, check=True)
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", *FROM_SDIST],
                            cwd=unpacked, capture_output=True, text=True, env=env, timeout=300)

    assert imported.stdout.strip() == str(unpacked / "check_itop_backup" / "__init__.py")
    closing = tested.stdout.strip().splitlines()[-1]
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert re.fullmatch(r"\d+ passed(, \d+ deselected)? in .*", closing), closing  # xdist counts none


def test_the_systemd_units_link_to_no_page_that_does_not_exist():
    # The service named a PyPI page the project does not have: a unit's Documentation= may only
    # be a man page that is there (the README, which says how, is not installed).
    for unit in sorted((ROOT / "contrib" / "systemd").iterdir()):
        for links in re.findall(r"^Documentation=(.*)$", unit.read_text(), re.MULTILINE):
            for link in links.split():
                assert link.startswith("man:"), f"{unit.name}: {link} is not shipped"
                assert subprocess.run(["man", "-w", link[4:]], capture_output=True).returncode == 0, \
                    f"{unit.name}: {link} does not exist"
