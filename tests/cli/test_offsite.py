"""Copies in object storage, end to end against a real SeaweedFS: ``itop-backup run --offsite``,
the probe's ``--offsite``, ``itop-backup verify`` and ``restore`` of ``s3://`` copies."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlparse

import botocore.exceptions
import pyrage
import pytest

from check_itop_backup.cli.backup import backup_main
from check_itop_backup.offsite.location import Location
from check_itop_backup.offsite.store import Store, StoreSettings
from check_itop_backup.offsite.upload import ArchiveIdentity, upload_archive
from tests.backup.test_run import RUN, checksums, populate, write_itop
from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check
from tests.proc import processes
from tests.s3server import ACCESS_KEY, SECRET_KEY, Relay, SilentStore, closed_endpoint


@pytest.fixture
def itop(tmp_path, mariadb_database):
    settings, database = mariadb_database
    populate(settings, database)
    config = write_itop(tmp_path / "itop", settings, database)
    return settings, database, config, tmp_path


class Setup:
    """One iTop instance, its backup directory and history, one bucket of the test store."""

    def __init__(self, itop, store, bucket: str) -> None:
        self.settings, self.database, self.config, tmp_path = itop
        self.store, self.bucket = store, bucket
        self.target = tmp_path / "backups"
        self.history = tmp_path / "history.sqlite"
        self.pattern = f"{self.target}/__DB__-%Y-%m-%d_%H_%M"
        self.url = f"s3://{bucket}/itop"

    def run(self, *more: str, endpoint: str | None = None) -> int:
        with pytest.raises(SystemExit) as exited:
            backup_main(["run", "--itop-config", str(self.config), "-f", self.pattern, "--history",
                         str(self.history), "--offsite", self.url,
                         "--s3-endpoint-url", endpoint or self.store.endpoint, *more])
        return exited.value.code

    def check(self, *more: str, endpoint: str | None = None):
        return run_check("--itop-config", self.config, "-f", self.pattern, "--settle", "0", "--history",
                         self.history, "--offsite", self.url, "--s3-endpoint-url",
                         endpoint or self.store.endpoint, *more)

    def archives(self) -> list[str]:
        return sorted(p.name for p in self.target.iterdir() if p.name.endswith(".tar.gz"))

    def keys(self) -> list[str]:
        listed = self.store.client().list_objects_v2(Bucket=self.bucket, Prefix="itop/")
        return sorted(item["Key"] for item in listed.get("Contents", ()))

    def uploads(self) -> list[tuple]:
        with sqlite3.connect(self.history) as connection:
            return connection.execute("SELECT archive_path, state, object_key, message FROM uploads"
                                      " ORDER BY id").fetchall()


@pytest.fixture
def setup(itop, s3_environment):
    return Setup(itop, s3_environment, s3_environment.bucket())


def later(hours: float) -> str:
    return (datetime.now().astimezone() + timedelta(hours=hours)).isoformat()


def test_round_trip_upload_probe_delete_and_copy_again(setup, capsys):
    assert setup.run("-v") == 0
    [name] = setup.archives()
    assert f"\ncopied {name} to {setup.url}/{name}\n" in capsys.readouterr().out
    assert setup.keys() == [f"itop/{name}"]
    head = setup.store.client().head_object(Bucket=setup.bucket, Key=f"itop/{name}")
    local = setup.target / name
    assert head["ContentLength"] == local.stat().st_size
    assert head["Metadata"]["archive-size"] == str(local.stat().st_size)
    assert len(head["Metadata"]["dump-sha256"]) == 64 and head["Metadata"]["tables"] == "3"
    assert setup.uploads() == [(str(local), "done", f"itop/{name}", setup.uploads()[0][3])]

    relay = Relay(urlparse(setup.store.endpoint).port)
    try:
        ok = setup.check(endpoint=relay.endpoint)
    finally:
        relay.close()
    assert ok.exit_code == 0, ok.stdout
    listing = f"GET /{setup.bucket}?list-type=2&prefix=itop%2F&delimiter=%2F&encoding-type=url"
    assert relay.requests == [listing, f"HEAD /{setup.bucket}/itop/{name}"]  # listing and HEAD only
    assert f"copied to {setup.url}/{name}" in ok.status_line
    assert f"offsite_size={local.stat().st_size}B" in ok.perfdata
    assert "offsite_age=" in ok.perfdata and "offsite_lag=" in ok.perfdata
    families = setup.check("--format", "prometheus").stdout
    assert "# HELP itop_backup_offsite_age_seconds age of the newest copy in object storage" in families
    assert f'itop_backup_offsite_size_bytes{{itop_instance="{setup.database}"}} {local.stat().st_size}.0' \
        in families

    setup.store.client().delete_object(Bucket=setup.bucket, Key=f"itop/{name}")
    warning = setup.check("--now", later(2))
    assert warning.exit_code == 1, warning.stdout
    assert f"no copy {setup.url}/{name} 2h 0m after the archive was written (grace 1h 0m)" \
        in warning.status_line
    critical = setup.check("--now", later(2), "--critical-age", "90m")
    assert critical.exit_code == 2
    assert f"no copy {setup.url}/{name} 2h 0m after the archive was written (more than 1h 30m)" \
        in critical.status_line

    assert setup.run("--timezone", "Asia/Tokyo") == 0  # the next run, under another name
    [_, newer] = sorted(setup.archives(), key=lambda n: (setup.target / n).stat().st_mtime)
    assert setup.keys() == sorted([f"itop/{name}", f"itop/{newer}"])  # the deleted copy is back


def test_a_failed_upload_keeps_the_archive_exits_1_and_the_next_run_retries(setup, capsys):
    assert setup.run(endpoint=closed_endpoint()) == 1
    [name] = setup.archives()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"itop-backup run: {name} is not copied to {setup.url}/ (cannot ")
    assert line.endswith("; it is kept here and the next run retries")
    assert setup.keys() == []
    [(path, state, key, message)] = setup.uploads()
    assert (path, state, key) == (str(setup.target / name), "pending", None) and message
    with sqlite3.connect(setup.history) as connection:
        assert connection.execute("SELECT status FROM runs").fetchall() == [("ok",)]

    with pytest.raises(SystemExit):
        backup_main(["history", "--history", str(setup.history), "--format", "json"])
    [upload] = [event for event in json.loads(capsys.readouterr().out) if event["event"] == "upload"]
    assert (upload["state"], upload["archive"]) == ("pending", str(setup.target / name))
    assert upload["detail"] == f"{setup.url}/: {message}"

    assert setup.run("--timezone", "Asia/Tokyo") == 0
    assert len(setup.keys()) == 2 and f"itop/{name}" in setup.keys()
    assert [row[1] for row in setup.uploads()] == ["done", "done"]


def test_kill_9_mid_upload_leaves_no_object_and_the_next_run_completes_it(setup):
    extra = setup.config.parents[2] / "collectors" / "ldap" / "conf" / "params.local.xml"
    extra.write_bytes(os.urandom(20 << 20))  # an archive of three 8 MiB parts (it does not compress)
    relay = Relay(urlparse(setup.store.endpoint).port, hold_part=3)
    env = dict(os.environ, CHECK_ITOP_BACKUP_HISTORY=str(setup.history))
    runner = subprocess.Popen(RUN + ["--itop-config", str(setup.config), "-f", setup.pattern, "--history",
                                     str(setup.history), "--offsite", setup.url,
                                     "--s3-endpoint-url", relay.endpoint],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = setup.store.client()
    try:
        assert relay.holding.wait(300), runner.stderr.read1().decode()
        argv = processes(setup.url)[runner.pid].argv
        assert not any(SECRET_KEY.encode() in arg for arg in argv)
        [upload] = client.list_multipart_uploads(Bucket=setup.bucket)["Uploads"]
        give_up = time.monotonic() + 300  # a bound for a broken store, not a speed assumption
        while len(client.list_parts(Bucket=setup.bucket, Key=upload["Key"],
                                    UploadId=upload["UploadId"]).get("Parts", [])) < 2:
            assert time.monotonic() < give_up, "parts 1 and 2 never arrived"
            time.sleep(0.05)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        relay.close()
    [name] = setup.archives()
    key = f"itop/{name}"
    with pytest.raises(botocore.exceptions.ClientError, match="404"):
        setup.store.client().head_object(Bucket=setup.bucket, Key=key)
    unfinished = setup.store.client().list_multipart_uploads(Bucket=setup.bucket).get("Uploads", [])
    assert [upload["Key"] for upload in unfinished] == [key]
    with pytest.raises(SystemExit) as verified:
        backup_main(["verify", str(setup.target / name)])
    assert verified.value.code == 0  # the local archive is intact
    assert [row[1] for row in setup.uploads()] == ["pending"]

    watching = Relay(urlparse(setup.store.endpoint).port)
    try:
        assert setup.run("--timezone", "Asia/Tokyo", endpoint=watching.endpoint) == 0
    finally:
        watching.close()
    assert key in setup.keys() and len(setup.keys()) == 2
    assert client.list_multipart_uploads(Bucket=setup.bucket).get("Uploads", []) == []
    sent = [re.search(r"partNumber=(\d+)", line).group(1) for line in watching.requests
            if line.startswith(f"PUT /{setup.bucket}/{key}?")]
    assert sent == ["3"]  # the upload is resumed: parts 1 and 2, in the store already, are not sent again
    copy = client.get_object(Bucket=setup.bucket, Key=key)["Body"].read()
    assert copy == (setup.target / name).read_bytes()
    assert client.head_object(Bucket=setup.bucket, Key=key, ChecksumMode="ENABLED")["ChecksumSHA256"] \
        .endswith("-3")


def test_a_part_damaged_on_the_way_is_refused_by_the_store(setup, capsys):
    relay = Relay(urlparse(setup.store.endpoint).port, corrupt=True)
    try:
        assert setup.run(endpoint=relay.endpoint) == 1
    finally:
        relay.close()
    assert relay.corrupted
    [line] = capsys.readouterr().err.splitlines()
    assert "BadDigest" in line and "(part 1)" in line
    assert setup.keys() == []


def test_wrong_key_is_unknown_for_the_offsite_part_only(setup, monkeypatch):
    assert setup.run() == 0
    [name] = setup.archives()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    unknown = setup.check()
    assert unknown.exit_code == 3, unknown.stdout
    assert unknown.status_line.startswith("ITOP_BACKUP UNKNOWN - offsite copy cannot be checked: cannot "
                                          f"list {setup.url}/: SignatureDoesNotMatch")
    assert f"; {name}: " in unknown.status_line  # the local verdict, OK, is there too
    assert "age=" in unknown.perfdata and "offsite" not in unknown.perfdata
    critical = setup.check("--size-min", "1GB")
    assert critical.exit_code == 2  # a local CRITICAL stays CRITICAL
    assert "not above the 1000000000 B minimum" in critical.status_line
    assert "offsite copy cannot be checked" in critical.status_line
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    unreachable = setup.check("-t", "60", endpoint=closed_endpoint())
    assert unreachable.exit_code == 3 and "Could not connect to the endpoint URL" in unreachable.status_line
    silent = SilentStore()
    try:
        hanging = setup.check("-t", "12", "--size-min", "1GB", endpoint=silent.endpoint)
    finally:
        silent.close()
    assert hanging.exit_code == 2, hanging.stdout  # the store never answers: the local verdict stands
    assert "offsite copy cannot be checked: cannot list" in hanging.status_line
    assert "Read timeout on endpoint URL" in hanging.status_line


def test_a_copy_that_differs_from_the_archive_is_critical(setup):
    assert setup.run() == 0
    [name] = setup.archives()
    client = setup.store.client()
    head = client.head_object(Bucket=setup.bucket, Key=f"itop/{name}")
    client.put_object(Bucket=setup.bucket, Key=f"itop/{name}", Body=b"x",
                      Metadata=dict(head["Metadata"], **{"dump-sha256": "0" * 64}))
    wrong = setup.check()
    assert wrong.exit_code == 2
    assert f"the copy {setup.url}/{name} holds a dump of SHA-256 000000000000…, the local manifest says" \
        in wrong.status_line
    client.put_object(Bucket=setup.bucket, Key=f"itop/{name}", Body=b"x",
                      Metadata=dict(head["Metadata"], **{"archive-size": "1"}))
    assert f"the copy {setup.url}/{name} is 1 B (1 B), the local archive" in setup.check().status_line


def test_the_probe_verifies_the_copy_streamed_from_the_store(setup, tmp_path):
    assert setup.run() == 0
    [name] = setup.archives()
    verified = setup.check("--verify", "dump", "--offsite-verify-every", "7d")
    assert verified.exit_code == 0, verified.stdout
    client = setup.store.client()
    head = client.head_object(Bucket=setup.bucket, Key=f"itop/{name}")
    data = (setup.target / name).read_bytes()
    client.put_object(Bucket=setup.bucket, Key=f"itop/{name}", Body=data[:-3000], Metadata=head["Metadata"])
    cached = setup.check("--verify", "dump", "--offsite-verify-every", "7d")
    assert cached.exit_code == 0  # verified less than 7 days ago
    fresh = run_check("--itop-config", setup.config, "-f", setup.pattern, "--settle", "0", "--history",
                      tmp_path / "other.sqlite", "--offsite", setup.url, "--s3-endpoint-url",
                      setup.store.endpoint, "--verify", "dump", "--offsite-verify-every", "7d")
    assert fresh.exit_code == 2, fresh.stdout
    assert f"the copy {setup.url}/{name} fails dump verification: gzip stream truncated" in fresh.status_line


def test_an_encrypted_copy_verifies_and_restores_from_the_store_with_the_identity(setup, new_database,
                                                                               tmp_path, capsys, monkeypatch):
    outputs: list[str] = []
    scratch = tmp_path / "tmp"  # where a temporary of this process or its children would go
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def said(capture):
        out = capture.readouterr()
        outputs.extend((out.out, out.err))
        return out

    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "itop-backup.key"
    key_file.write_text(f"# created by the test\n{identity}\n")
    key_file.chmod(0o600)
    recipient = str(identity.to_public())
    assert setup.run("--offsite-encrypt-to", recipient) == 0
    [name] = setup.archives()
    key = f"itop/{name}.age"
    assert setup.keys() == [key]
    assert sorted(p.name for p in setup.target.iterdir()) == [".itop-backup.lock", name]  # no plaintext copy
    body = setup.store.client().get_object(Bucket=setup.bucket, Key=key)["Body"].read()
    assert body.startswith(b"age-encryption.org/v1\n") and b"itop-dump.sql" not in body
    assert setup.check().exit_code == 0

    endpoint = ["--s3-endpoint-url", setup.store.endpoint]
    with pytest.raises(SystemExit) as refused:
        backup_main(["verify", f"s3://{setup.bucket}/{key}", *endpoint])
    assert refused.value.code == 1
    assert said(capsys).err == (f"itop-backup verify: s3://{setup.bucket}/{key} is encrypted: give "
                                       "--identity FILE (the age identity of one of its recipients)\n")
    with pytest.raises(SystemExit) as verified:
        backup_main(["verify", f"s3://{setup.bucket}/{key}", "--identity", str(key_file), *endpoint])
    out = said(capsys)
    assert verified.value.code == 0, out.err
    assert out.out.startswith(f"s3://{setup.bucket}/{key}: OK at dump level")
    server = ["--db-host", f"{setup.settings['host']}:{setup.settings['port']}",
              "--db-user", setup.settings["user"]]
    with pytest.raises(SystemExit) as test_restored:
        backup_main(["verify", f"s3://{setup.bucket}/{key}", "--identity", str(key_file), *endpoint,
                     "--level", "restore", *server])
    out = said(capsys)
    assert test_restored.value.code == 0, out.err
    assert out.out.startswith(f"s3://{setup.bucket}/{key}: OK at restore level")

    with pytest.raises(SystemExit) as restored:
        backup_main(["restore", f"s3://{setup.bucket}/{key}", "--identity", str(key_file), *endpoint,
                     *server, "--db-name", new_database])
    out = said(capsys)
    assert restored.value.code == 0, out.err
    assert f"restored s3://{setup.bucket}/{key} into {new_database}" in out.out
    assert checksums(setup.settings, new_database) == checksums(setup.settings, setup.database)

    other = pyrage.x25519.Identity.generate()
    (tmp_path / "other.key").write_text(f"{other}\n")
    with pytest.raises(SystemExit) as wrong:
        backup_main(["verify", f"s3://{setup.bucket}/{key}", "--identity", str(tmp_path / "other.key"),
                     *endpoint])
    assert wrong.value.code == 1
    assert f"cannot read s3://{setup.bucket}/{key}: cannot decrypt" in said(capsys).err

    secret_texts = (SECRET_KEY.encode(), str(identity).encode(), str(other).encode())
    history = setup.history.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("history*"))
    assert not any(text in history for text in secret_texts)
    said = "".join(outputs).encode()
    assert said and not any(text in said for text in secret_texts)
    assert list(scratch.iterdir()) == []  # streamed: nothing written to disk on the way


def test_remote_retention_keeps_the_newest_and_object_lock_keeps_what_it_deleted(itop, s3_environment):
    setup = Setup(itop, s3_environment, s3_environment.bucket(lock=True))
    more = ("--offsite-retention-count", "1", "--offsite-lock-days", "1")
    assert setup.run(*more) == 0
    [first] = setup.keys()
    assert setup.run("--timezone", "Asia/Tokyo", *more) == 0
    [second] = setup.keys()
    assert second != first
    client = setup.store.client()
    retention = client.get_object_retention(Bucket=setup.bucket, Key=second)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    assert retention["RetainUntilDate"].timestamp() > (datetime.now() + timedelta(hours=23)).timestamp()
    versions = client.list_object_versions(Bucket=setup.bucket).get("Versions", [])
    assert first in {version["Key"] for version in versions}  # deleted from the listing, kept locked
    [version] = [v["VersionId"] for v in versions if v["Key"] == first]
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=setup.bucket, Key=first, VersionId=version)


def test_credentials_from_a_profile_of_the_aws_files(setup, tmp_path, monkeypatch, capsys):
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[itop-offsite]\naws_access_key_id = {ACCESS_KEY}\n"
                           f"aws_secret_access_key = {SECRET_KEY}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert setup.run() == 1  # no credentials in the default profile
    assert "Unable to locate credentials" in capsys.readouterr().err
    assert setup.run("--timezone", "Asia/Tokyo", "--s3-profile", "itop-offsite") == 0
    assert len(setup.keys()) == 2
    assert setup.run("--timezone", "America/New_York", "--s3-profile", "nobody") == 1
    assert "The config profile (nobody) could not be found" in capsys.readouterr().err


def test_the_content_md5_path_for_stores_without_sha256_checksums(s3_environment, tmp_path):
    bucket = s3_environment.bucket()
    archive = tmp_path / "itop-2026-12-01_23_30.tar.gz"
    archive.write_bytes(os.urandom(9 << 20))  # two parts
    store = Store(StoreSettings(s3_environment.endpoint))
    identity = ArchiveIdentity(archive.name, archive.stat().st_size, archive.stat().st_mtime)
    uploaded = upload_archive(store, Location.parse(f"s3://{bucket}/p"), str(archive), identity,
                              checksum="MD5")
    assert uploaded == (f"p/{archive.name}", archive.stat().st_size, "Content-MD5 of each part")
    body = s3_environment.client().get_object(Bucket=bucket, Key=uploaded.key)["Body"].read()
    assert body == archive.read_bytes()


def test_bad_offsite_options_are_one_line_and_exit_2(itop, capsys):
    _, _, config, tmp_path = itop
    base = ["run", "--itop-config", str(config), "-f", f"{tmp_path}/b/x-%Y", "--history", str(tmp_path / "h")]
    for more, expected in (
            (["--offsite", "s3://B/x"], "--offsite: 's3://B/x': 'B' is not a bucket name (3-63 lower-case "
                                        "letters, digits, dots and hyphens)"),
            (["--offsite", "/tmp/x"], "--offsite: '/tmp/x' is not an s3://BUCKET/PREFIX address"),
            (["--offsite-lock-days", "3"], "the --offsite-* options need --offsite s3://BUCKET/PREFIX"),
            (["--offsite", "s3://bucket/x", "--offsite-encrypt-to", "age1nope"],
             "--offsite-encrypt-to: 'age1nope' is not an age or SSH public key")):
        with pytest.raises(SystemExit) as exited:
            backup_main(base + more)
        assert exited.value.code == 2
        assert capsys.readouterr().err == f"itop-backup run: {expected}\n"
    assert not (tmp_path / "b").exists()


def test_offsite_verify_every_without_what_it_needs_is_unknown(tmp_path):
    for more in ((), ("--offsite", "s3://bucket/x"), ("--verify", "dump")):
        answer = run_check("-f", tmp_path / "x-%Y", "--offsite-verify-every", "7d", *more)
        assert (answer.exit_code, answer.stdout) == (3, "ITOP_BACKUP UNKNOWN - --offsite-verify-every needs "
                                                        "--offsite and --verify dump (or restore)\n")
    answer = run_check("-f", tmp_path / "x-%Y", "--offsite", "s3://bucket/x", "--offsite-grace", "soon")
    assert answer.exit_code == 3 and answer.stdout.startswith("ITOP_BACKUP UNKNOWN - offsite: ")


def test_the_offsite_param_file_key_is_used(setup, tmp_path):
    params = tmp_path / "offsite.params"
    params.write_text(f"offsite = {setup.url}\n")
    with pytest.raises(SystemExit) as exited:
        backup_main(["run", "--itop-config", str(setup.config), "-f", setup.pattern, "--history",
                     str(setup.history), "--param-file", str(params),
                     "--s3-endpoint-url", setup.store.endpoint])
    assert exited.value.code == 0
    [name] = setup.archives()
    assert setup.keys() == [f"itop/{name}"]
    unique = uuid.uuid4().hex  # the probe reads the key too
    assert run_check("--itop-config", setup.config, "-f", setup.pattern, "--settle", "0", "--history",
                     tmp_path / f"{unique}.sqlite", "--param-file", params, "--s3-endpoint-url",
                     setup.store.endpoint).status_line.endswith(f"copied to {setup.url}/{name}")


def _imported(tmp_path, *more: str) -> set[str]:
    """The modules a probe process imports (``python -X importtime``), with options *more*."""
    archive = place_archive(tmp_path / "itop-2026-11-26.tar.gz", datetime.now())
    archive.chmod(0o600)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "from check_itop_backup.cli.check import check_main; check_main()",
                           "--backup-file", str(archive), "--settle", "0",
                           "--history", str(tmp_path / "h.sqlite"), *more],
                          capture_output=True, text=True, check=False)
    lines = done.stderr.splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


def test_the_plain_probe_imports_nothing_of_the_offsite_part(tmp_path):
    plain = _imported(tmp_path)
    assert "check_itop_backup.check.resource" in plain
    assert not {name for name in plain if name.split(".")[0] in ("boto3", "botocore", "pyrage")
                or name.startswith(("check_itop_backup.offsite", "check_itop_backup.check.offsite"))}
    offsite = _imported(tmp_path, "--offsite", "s3://bucket/x", "--s3-endpoint-url", closed_endpoint())
    assert {"boto3", "check_itop_backup.offsite.store", "check_itop_backup.check.offsite"} <= offsite


def test_without_boto3_the_offsite_options_say_what_to_install(tmp_path):
    hidden = "import sys; sys.modules['boto3'] = None\n"
    verify = (hidden + "from check_itop_backup.cli.backup import backup_main\n"
              "backup_main(['verify', 's3://bucket/x.tar.gz'])\n")
    done = subprocess.run([sys.executable, "-c", verify], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (1, "itop-backup verify: copies in object storage need boto3: "
                                                 "pip install 'check_itop_backup[offsite]'\n")
    check = (hidden + "from check_itop_backup.cli.check import check_main\n"
             "check_main(['-f', '/x/y', '--offsite', 's3://bucket/x'])\n")
    probe = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    assert (probe.returncode, probe.stdout) == (3, "ITOP_BACKUP UNKNOWN - offsite: copies in object storage "
                                                   "need boto3: pip install 'check_itop_backup[offsite]'\n")


def test_itop_own_archive_verifies_streamed_from_the_store(s3_environment, capsys):
    bucket = s3_environment.bucket()
    s3_environment.client().upload_file(str(ITOP_ARCHIVE), bucket, "itop/itop-2026-11-26.tar.gz")
    url = f"s3://{bucket}/itop/itop-2026-11-26.tar.gz"
    with pytest.raises(SystemExit) as verified:
        backup_main(["verify", url, "--s3-endpoint-url", s3_environment.endpoint])
    out = capsys.readouterr()
    assert verified.value.code == 0, out.err
    assert out.out.startswith(f"{url}: OK at dump level")  # one gzip member, read as a stream
    with pytest.raises(SystemExit) as missing:
        backup_main(["verify", url + ".old", "--s3-endpoint-url", s3_environment.endpoint])
    assert missing.value.code == 1
    assert capsys.readouterr().err == f"itop-backup verify: {url}.old does not exist\n"


def test_object_lock_on_a_bucket_without_it_is_one_line(setup, capsys):
    assert setup.run("--offsite-lock-days", "1") == 1
    [name] = setup.archives()
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"itop-backup run: {name} is not copied to {setup.url}/ (cannot upload {name} "
                           f"to {setup.url}/{name}: ")
    assert line.endswith("; Object Lock needs a bucket created with it enabled); it is kept here and the "
                         "next run retries")
    assert setup.keys() == []
