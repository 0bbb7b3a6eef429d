"""``itop-backup run`` seen by the monitoring: its pings to a dead-man's-switch service (a real HTTP
server on 127.0.0.1) and its Prometheus textfile, for good, failed and disk-full runs, and a
service that is down or slower than the ping timeout."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile

import pytest

from tests.backup.test_run import RUN, archives, populate, run_cli, write_itop
from tests.cli.test_prometheus import families, promtool_check_metrics
from tests.ping_server import Ping, PingServer, closed_port_url


@pytest.fixture
def itop(tmp_path, mariadb_database):
    settings, database = mariadb_database
    populate(settings, database)
    return settings, database, write_itop(tmp_path / "itop", settings, database), tmp_path


def backup(itop, *extra: str) -> int:
    settings, database, config, tmp_path = itop
    return run_cli("--itop-config", str(config), "-f", str(tmp_path / "out" / "a"),
                   "--history", str(tmp_path / "h.sqlite"), *extra)


def failing_bindir(tmp_path):
    """A mysql_bindir whose mysqldump fails as tests/backup/test_run.py's does."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mysqldump").write_text(
        "#!/bin/sh\necho '-- partial'\necho 'mysqldump: Error 2020: Got packet bigger than "
        "'\"'\"'max_allowed_packet'\"'\"' bytes' >&2\nexit 2\n")
    (bindir / "mysqldump").chmod(0o755)
    return bindir


def assert_one_run_id(pings: list[Ping]) -> None:
    assert len({ping.query["rid"] for ping in pings}) == 1


def test_a_good_run_pings_start_then_success_with_its_log(itop, capsys, tmp_path):
    with PingServer() as server:
        (tmp_path / "ping.params").write_text(f"ping_url = {server.url}/ping/5f3e\n")  # from a param file
        status = backup(itop, "--param-file", str(tmp_path / "ping.params"))
    assert status == 0
    assert capsys.readouterr().err == ""
    [archive] = archives(tmp_path / "out")
    start, success = server.pings
    assert (start.method, start.path, start.body) == ("GET", "/ping/5f3e/start", "")
    assert (success.method, success.path) == ("POST", "/ping/5f3e")
    assert_one_run_id(server.pings)
    assert "INFO: dumping with: " in success.body
    assert success.body.splitlines()[-1].startswith(f"created {tmp_path / 'out' / archive} (")


def test_a_failed_dump_pings_start_then_its_exit_status_with_the_error(itop, capsys, tmp_path, monkeypatch):
    with PingServer() as server:
        monkeypatch.setenv("ITOP_BACKUP_PING_URL", f"{server.url}/ping/5f3e")  # from the environment
        status = backup(itop, "--mysql-bindir", str(failing_bindir(tmp_path)))
    assert status == 1
    error = ("itop-backup run: mysqldump failed (exit 2): mysqldump: Error 2020: Got packet bigger than "
             "'max_allowed_packet' bytes")
    assert capsys.readouterr().err == error + "\n"
    start, failure = server.pings
    assert start.path == "/ping/5f3e/start"
    assert (failure.method, failure.path) == ("POST", "/ping/5f3e/1")
    assert failure.body.splitlines()[-1] == error
    assert_one_run_id(server.pings)
    assert archives(tmp_path / "out") == []


def test_a_disk_full_run_pings_its_failure_and_leaves_no_archive(itop, tmp_path):
    """The target is a 256 KiB tmpfs in a mount namespace of the run's own (unshare): the archive
    (about 1 MB of random BLOBs) cannot fit."""
    settings, database, config, tmp_path = itop
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is needed to give the run a full disk")
    target = tmp_path / "small"
    target.mkdir()
    script = ('mount -t tmpfs -o size=256k tmpfs "$1" || exit 99; shift; "$@"; status=$?; '
              'ls -A "$TARGET"; exit $status')
    with PingServer() as server:
        done = subprocess.run(
            [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(target),
             *RUN, "--itop-config", str(config), "-f", str(target / "a"),
             "--history", str(tmp_path / "h.sqlite"),
             "--ping-url", f"{server.url}/ping/5f3e"],
            capture_output=True, text=True, env=dict(os.environ, TARGET=str(target)), timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.split() == [".itop-backup.lock"]  # what the full disk holds: no archive, no temporary
    *before, line = done.stderr.splitlines()
    # the pre-flight's space warning, when the server's table statistics are already up to date
    assert all(earlier.startswith("itop-backup run: WARNING: only ") for earlier in before), done.stderr
    assert line.startswith(f"itop-backup run: disk full while writing {target}/.itop-backup-")
    assert line.endswith(".tmp: no archive made")
    start, failure = server.pings
    assert (start.path, failure.path) == ("/ping/5f3e/start", "/ping/5f3e/1")
    assert failure.body.splitlines()[-1] == line
    assert_one_run_id(server.pings)
    with sqlite3.connect(tmp_path / "h.sqlite") as history:
        assert history.execute("SELECT status FROM runs").fetchall() == [("failed",)]


def assert_good_archive(tmp_path) -> None:
    [name] = archives(tmp_path / "out")
    with tarfile.open(tmp_path / "out" / name) as archive:
        assert archive.getnames()[-1] == "itop-dump.sql"
        assert archive.extractfile("itop-dump.sql").read().rstrip().rsplit(b"\n", 1)[-1].startswith(
            b"-- Dump completed")


def test_a_service_that_is_down_changes_neither_the_exit_status_nor_the_archive(itop, capsys, tmp_path):
    url = closed_port_url()
    status = backup(itop, "--ping-url", url + "/5f3e-secret")
    assert status == 0
    host = url.split("/")[2]
    assert capsys.readouterr().err == (
        f"itop-backup run: WARNING: ping to {host} failed (start: cannot connect: Connection refused "
        "(3 attempts); success: cannot connect: Connection refused (3 attempts)); the run's result is "
        "unchanged\n")
    assert_good_archive(tmp_path)


def test_a_service_slower_than_the_timeout_changes_neither_the_exit_status_nor_the_archive(itop, capsys,
                                                                                           tmp_path):
    with PingServer(hold=True) as server:  # holds every request until the run is over
        status = backup(itop, "--ping-url", f"{server.url}/ping/5f3e", "--ping-timeout", "1")
        received = list(server.pings)
    assert status == 0
    assert capsys.readouterr().err == (
        f"itop-backup run: WARNING: ping to {server.url[7:]} failed (start: no answer within 1s "
        "(3 attempts); success: no answer within 1s (3 attempts)); the run's result is unchanged\n")
    assert [ping.path for ping in received] == ["/ping/5f3e/start"] * 3 + ["/ping/5f3e"] * 3
    assert_good_archive(tmp_path)


def test_a_bad_ping_url_is_a_usage_error_before_anything_runs(itop, capsys, tmp_path):
    assert backup(itop, "--ping-url", "ftp://example.org/x") == 2
    assert capsys.readouterr().err == ("itop-backup run: the ping URL must be an http:// or https:// URL, "
                                       "not 'ftp://example.org/x'\n")
    assert not (tmp_path / "out").exists()


def test_bad_options_ping_exit_status_2_when_the_url_is_known_without_them(tmp_path, capsys):
    with PingServer() as server:
        status = run_cli("-f", str(tmp_path / "out" / "a"), "--ping-url", f"{server.url}/ping/5f3e")
    assert status == 2
    error = "itop-backup run: no database name: give --itop-config or --db-name"
    assert capsys.readouterr().err == error + "\n"
    [failure] = server.pings
    assert (failure.method, failure.path, failure.body) == ("POST", "/ping/5f3e/2", error + "\n")


def test_the_textfile_is_written_after_every_run_with_counts_from_the_history(itop, tmp_path):
    textfile = tmp_path / "itop_backup_run.prom"
    assert backup(itop, "--prometheus-textfile", str(textfile)) == 0
    with sqlite3.connect(tmp_path / "h.sqlite") as history:
        [(started, finished, size)] = history.execute("SELECT started, finished, size FROM runs")
    first = families(textfile.read_text())

    assert backup(itop, "--prometheus-textfile", str(textfile), "--mysql-bindir",
                  str(failing_bindir(tmp_path)), "--instance", "production") == 1
    second = families(textfile.read_text())

    def one(value, instance=itop[1]):  # the database name by default
        return {(("itop_instance", instance),): value}

    assert first == {
        "itop_backup_run_last_run_timestamp_seconds": ("gauge", one(finished)),
        "itop_backup_run_last_run_status": ("gauge", one(0)),
        "itop_backup_run_last_run_duration_seconds": ("gauge", one(finished - started)),
        "itop_backup_run_last_success_timestamp_seconds": ("gauge", one(finished)),
        "itop_backup_run_last_archive_size_bytes": ("gauge", one(size)),
        "itop_backup_run_runs": ("counter", {(("itop_instance", itop[1]), ("status", "ok")): 1,
                                             (("itop_instance", itop[1]), ("status", "failed")): 0}),
    }
    assert second["itop_backup_run_last_run_status"] == ("gauge", one(1, "production"))
    assert second["itop_backup_run_last_success_timestamp_seconds"] == ("gauge", one(finished, "production"))
    assert second["itop_backup_run_last_archive_size_bytes"] == ("gauge", one(size, "production"))
    assert second["itop_backup_run_runs"][1] == {(("itop_instance", "production"), ("status", "ok")): 1,
                                                 (("itop_instance", "production"), ("status", "failed")): 1}
    promtool_check_metrics(textfile.read_text())
