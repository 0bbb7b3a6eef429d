"""The README's setup with real system users: the runner writes as its own user, the monitoring
user reads through the runner's group, both share the history. And a world-readable archive."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.backup.test_run import populate, write_itop
from tests.checkrun import place_archive, run_check

RUNNER = "from check_itop_backup.cli.backup import backup_main; backup_main()"
PROBE = "from check_itop_backup.cli.check import check_main; check_main()"
PARIS = ZoneInfo("Europe/Paris")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def users():
    """A runner user and a monitoring user in the runner's group (README), removed afterwards."""
    token = uuid.uuid4().hex[:8]
    runner, monitor = f"cibrun{token}", f"cibmon{token}"
    try:
        for command in (["useradd", "--system", "--user-group", "--no-create-home",
                         "--shell", "/usr/sbin/nologin", runner],
                        ["useradd", "--system", "--user-group", "--no-create-home",
                         "--shell", "/usr/sbin/nologin", "--groups", runner, monitor]):
            subprocess.run(command, check=True, capture_output=True)
        yield runner, monitor
    finally:
        for name in (monitor, runner):
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)  # when userdel left it


@pytest.fixture
def shared_dir():
    """A directory other users can reach (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="cib-perms-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def reachable(path: str) -> bool:
    """Whether every user can reach *path* (o+x on it and every directory above)."""
    path = os.path.realpath(path)
    while os.stat(path).st_mode & stat.S_IXOTH:
        if os.path.dirname(path) == path:
            return True
        path = os.path.dirname(path)
    return False


@pytest.fixture(scope="module")
def python():
    """(interpreter, environment) the test users can run this package with: this venv's python
    when every user can reach it, else (a pyenv build under a 0700 /root) a linked copy of its
    installation, finding this venv's packages and this checkout through PYTHONPATH."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([*site.getsitepackages(), str(Path(__file__).parents[2])])}
    if reachable(sys.executable) and reachable(sys.base_prefix):
        yield sys.executable, env
        return
    copy = Path(tempfile.mkdtemp(prefix="cib-python-", dir="/tmp"))
    copy.chmod(0o755)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copy2(source, target)

    try:
        base = Path(sys.base_prefix)
        (copy / "bin").mkdir()
        link(os.path.realpath(sys.executable), str(copy / "bin" / version))
        shutil.copytree(base / "lib", copy / "lib", copy_function=link, symlinks=True,
                        ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__", "pkgconfig"))
        yield str(copy / "bin" / version), dict(env, LD_LIBRARY_PATH=str(copy / "lib"))
    finally:
        shutil.rmtree(copy)


def as_user(python, user: str, *argv: str, **options) -> subprocess.CompletedProcess:
    """Run python with *argv* as *user*, with root's usual umask 022 (the worst common case)."""
    executable, env = python
    return subprocess.run(["runuser", "-u", user, "--", executable, *argv], capture_output=True,
                          text=True, umask=0o022, env=env, **options)


def test_the_monitoring_user_deep_verifies_what_the_runner_wrote_and_both_share_the_history(
        python, users, shared_dir, mariadb_database):
    runner, monitor = users
    settings, database = mariadb_database
    populate(settings, database)
    config = write_itop(shared_dir / "itop", settings, database)
    subprocess.run(["chown", "-R", f"{runner}:", shared_dir / "itop"], check=True)
    backups = shared_dir / "backups"  # the README's setup: setgid, the runner's group
    subprocess.run(["install", "-d", "-o", runner, "-g", runner, "-m", "2770", backups], check=True)
    history = backups / "history.sqlite"
    pattern = f"{backups}/__DB__-%Y-%m-%d_%H_%M"
    group = grp.getgrnam(runner).gr_gid

    made = as_user(python, runner, "-c", RUNNER, "run", "--itop-config", str(config),
                   "-f", pattern, "--history", str(history), cwd=shared_dir)

    assert made.returncode == 0, made.stderr
    [archive] = backups.glob("*.tar.gz")
    assert (mode(archive), archive.stat().st_gid) == (0o640, group)
    lock = backups / ".itop-backup.lock"
    assert (mode(lock), lock.stat().st_gid) == (0o640, group)
    assert (mode(history), history.stat().st_gid) == (0o660, group)

    # The runner's user keeps the history open (as a run recording itself would): its -wal and
    # -shm exist, owned by the runner, and the monitoring user must write through them.
    holder = subprocess.Popen(
        ["runuser", "-u", runner, "--", python[0], "-c",
         "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT * FROM runs').fetchall();"
         " print('open', flush=True); sys.stdin.read()", str(history)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, umask=0o022, env=python[1],
        cwd=shared_dir)
    try:
        assert holder.stdout.readline() == "open\n"
        for name in ("history.sqlite-wal", "history.sqlite-shm"):
            assert (mode(backups / name), (backups / name).stat().st_gid) == (0o660, group)

        probe = as_user(python, monitor, "-c", PROBE, "-f", pattern, "--db-name", database,
                        "--timezone", "Europe/Paris", "--history", str(history), "--verify", "dump",
                        "--settle", "0", cwd=shared_dir)
    finally:
        holder.communicate("")

    assert probe.returncode == 0, probe.stdout
    status = probe.stdout.splitlines()[0]
    assert status.startswith(f"ITOP_BACKUP OK - {archive.name}: "), status
    assert "dump level verified" in status
    # The runner records its next run in the history the probe wrote to.
    again = as_user(python, runner, "-c", RUNNER, "run", "--itop-config", str(config),
                    "-f", f"{backups}/again-__DB__-%Y-%m-%d_%H_%M", "--history", str(history),
                    cwd=shared_dir)
    assert again.returncode == 0, again.stderr
    assert "not recorded" not in again.stderr
    import sqlite3

    with sqlite3.connect(history) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("ok",), ("ok",)]
        assert connection.execute("SELECT verdict FROM archives").fetchall() == [("ok",)]
    assert pwd.getpwuid(archive.stat().st_uid).pw_name == runner


@pytest.fixture
def reachable_dir(shared_dir):
    """A backup directory every local user can enter, as iTop's data/backups/auto usually is."""
    directory = shared_dir / "auto"
    directory.mkdir(mode=0o755)
    return directory


NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)


def test_a_world_readable_archive_is_a_warning_naming_the_password(reachable_dir):
    archive = place_archive(reachable_dir / "itop-2026-11-26.tar.gz", NOW - timedelta(hours=10))
    archive.chmod(0o644)  # as iTop writes its archives

    run = run_check("-f", reachable_dir / "__DB__-%Y-%m-%d", "--db-name", "itop", "--timezone",
                    "Europe/Paris", "--now", NOW.isoformat())

    assert run.exit_code == 1
    assert run.status_line == (
        "ITOP_BACKUP WARNING - itop-2026-11-26.tar.gz is world-readable (mode 0644) and an iTop "
        "archive holds the database password (config-itop.php): chmod o-r")


@pytest.mark.parametrize("closed", ["archive", "directory"])
def test_an_archive_others_cannot_read_is_ok(reachable_dir, closed):
    archive = place_archive(reachable_dir / "itop-2026-11-26.tar.gz", NOW - timedelta(hours=10))
    archive.chmod(0o640 if closed == "archive" else 0o644)
    if closed == "directory":
        reachable_dir.chmod(0o750)

    run = run_check("-f", reachable_dir / "__DB__-%Y-%m-%d", "--db-name", "itop", "--timezone",
                    "Europe/Paris", "--now", NOW.isoformat())

    assert run.exit_code == 0, run.stdout
    assert run.status_line.startswith("ITOP_BACKUP OK - itop-2026-11-26.tar.gz: ")
