"""The history store on its own: schema creation and migration, what each record call writes and
each query returns, and the files it refuses (asserted on rows and on the values returned)."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from pathlib import Path

import pytest

from check_itop_backup.history import MIGRATIONS, ArchiveRecord, History, HistoryError, TicketRecord

SERIES = "/backups/itop-%Y-%m-%d"
TABLES = ["archives", "runs", "tickets", "uploads", "verdicts", "verifications"]


@pytest.fixture
def history(tmp_path):
    opened = History.open(str(tmp_path / "h.sqlite"))
    yield opened
    opened.close()


def rows(path: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


def test_a_new_history_has_every_table_the_latest_version_wal_and_is_group_writable(tmp_path):
    path = tmp_path / "deep" / "dir" / "h.sqlite"

    History.open(str(path)).close()

    assert rows(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") == [
        (name,) for name in TABLES]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o660


def test_a_version_1_history_gains_the_verdicts_table_and_keeps_its_rows(tmp_path):
    path = tmp_path / "h.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(MIGRATIONS[0])
        connection.execute("INSERT INTO runs (series, started, status) VALUES ('s', 1.0, 'ok')")
        connection.execute("PRAGMA user_version = 1")
        connection.commit()

    History.open(str(path)).close()

    assert rows(path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert rows(path, "SELECT COUNT(*) FROM verdicts") == [(0,)]
    assert rows(path, "SELECT series, started, status FROM runs") == [("s", 1.0, "ok")]


def refusal(path: Path, statement: str) -> str:
    """Make a SQLite file at *path* with *statement*, open it as a history; return the refusal,
    having checked that the file was left untouched."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(statement)
        connection.commit()
    before = path.read_bytes()

    with pytest.raises(HistoryError) as refused:
        History.open(str(path))

    assert path.read_bytes() == before
    return str(refused.value)


def test_a_newer_schema_is_refused_untouched(tmp_path):
    newer = len(MIGRATIONS) + 1

    assert refusal(tmp_path / "h.sqlite", f"PRAGMA user_version = {newer}") == (
        f"cannot use history {tmp_path / 'h.sqlite'}: its schema version {newer} is newer than "
        f"this program's ({len(MIGRATIONS)}); upgrade check_itop_backup")


def test_a_file_with_other_tables_and_no_version_is_not_a_history(tmp_path):
    assert refusal(tmp_path / "h.sqlite", "CREATE TABLE notes (text TEXT)") == (
        f"cannot use history {tmp_path / 'h.sqlite'}: not a check_itop_backup history "
        "(it has other tables: notes)")


def test_our_version_without_our_tables_is_damaged(tmp_path):
    assert refusal(tmp_path / "h.sqlite", "PRAGMA user_version = 1") == (
        f"cannot use history {tmp_path / 'h.sqlite'}: tables archives, runs, tickets, verifications "
        "are missing (not a check_itop_backup history, or damaged)")


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "file").write_text("")

    with pytest.raises(HistoryError) as refused:
        History.open(str(tmp_path / "file" / "h.sqlite"))

    assert str(refused.value) == (f"cannot open history {tmp_path / 'file' / 'h.sqlite'}: "
                                  f"{tmp_path / 'file'} is not a directory")


def test_an_archive_is_one_row_per_identity_whose_last_seen_and_verdict_follow(history):
    with history.transaction():
        first = history.record_archive(SERIES, "/b/a.tar.gz", 100, 10.0, 7, seen_at=20.0)
        again = history.record_archive(SERIES, "/b/a.tar.gz", 100, 10.0, 7, seen_at=30.0, verdict="ok")
        unjudged = history.record_archive(SERIES, "/b/a.tar.gz", 100, 10.0, 7, seen_at=40.0)
        replaced = history.record_archive(SERIES, "/b/a.tar.gz", 200, 11.0, 8, seen_at=40.0)

    assert first == ArchiveRecord(first.id, SERIES, "/b/a.tar.gz", 100, 10.0, 7, 20.0, 20.0, None)
    assert again == first._replace(last_seen=30.0, verdict="ok")
    assert unjudged == first._replace(last_seen=40.0, verdict="ok")  # no verdict given: the stored one stays
    assert replaced.id != first.id
    assert history.count_archives(SERIES) == 2
    assert history.count_archives("other") == 0


def test_archives_before_are_the_newest_first_of_their_series_only(history):
    with history.transaction():
        for mtime in (1.0, 2.0, 3.0, 4.0):
            history.record_archive(SERIES, f"/b/{mtime}", 1, mtime, 0, seen_at=mtime)
        history.record_archive("other", "/o/x", 1, 2.5, 0, seen_at=2.5)

    assert [a.mtime for a in history.archives_before(SERIES, 4.0, limit=2)] == [3.0, 2.0]
    assert [a.mtime for a in history.archives_before(SERIES, 1.0, limit=5)] == []
    assert history.known_identities(SERIES, since=3.0) == {("/b/3.0", 1, 3.0, 0), ("/b/4.0", 1, 4.0, 0)}


def test_a_verification_is_found_by_identity_and_level_and_replaced_when_redone(history):
    with history.transaction():
        archive = history.record_archive(SERIES, "/b/a", 100, 10.0, 7, seen_at=20.0)
        history.record_verification(archive.id, "archive", "ok", "fine", "{}", 21.0)
        history.record_verification(archive.id, "dump", "critical", "truncated", '{"x": 1}', 22.0)
        history.record_verification(archive.id, "dump", "ok", "complete", '{"x": 2}', 23.0)

    newest = history.verification("/b/a", 100, 10.0, 7, ("archive", "dump"))
    assert tuple(newest) == ("/b/a", "dump", "ok", "complete", '{"x": 2}', 23.0)
    assert history.verification("/b/a", 100, 10.0, 7, ("archive",)).message == "fine"
    assert history.verification("/b/a", 101, 10.0, 7, ("archive", "dump")) is None  # another identity
    assert history.listing("verifications") == [
        {"series": SERIES, "path": "/b/a", "level": "archive", "state": "ok", "message": "fine",
         "verified_at": 21.0},
        {"series": SERIES, "path": "/b/a", "level": "dump", "state": "ok", "message": "complete",
         "verified_at": 23.0}]


def test_the_previous_verification_is_the_newest_older_archive_not_critical_at_that_level(history):
    with history.transaction():
        for name, mtime, state in (("old", 1.0, "ok"), ("broken", 2.0, "critical"), ("new", 3.0, "ok")):
            archive = history.record_archive(SERIES, name, 1, mtime, 0, seen_at=mtime)
            history.record_verification(archive.id, "dump", state, name, "{}", mtime)

    assert history.previous_verification(SERIES, before=3.0, level="dump").path == "old"
    assert history.previous_verification(SERIES, before=4.0, level="dump").path == "new"
    assert history.previous_verification(SERIES, before=4.0, level="archive") is None
    assert history.previous_verification(SERIES, before=1.0, level="dump") is None


def test_a_verdict_is_recorded_only_when_it_changes(history):
    with history.transaction():
        archive = history.record_archive(SERIES, "/b/a", 1, 1.0, 0, seen_at=1.0)
        written = [history.record_verdict_change(SERIES, archive.id, "ok", "", "fine", 1.0),
                   history.record_verdict_change(SERIES, archive.id, "ok", "", "fine again", 2.0),
                   history.record_verdict_change(SERIES, archive.id, "warning", "size", "smaller", 3.0),
                   history.record_verdict_change(SERIES, None, "warning", "size", "no archive", 4.0),
                   history.record_verdict_change("other", None, "warning", "size", "no archive", 4.0)]

    assert written == [True, False, True, True, True]
    assert [(row["path"], row["state"], row["reason"]) for row in history.listing("verdicts")] == [
        ("/b/a", "ok", "fine"), ("/b/a", "warning", "smaller"), (None, "warning", "no archive"),  # SERIES
        (None, "warning", "no archive")]  # other


def test_a_ticket_is_open_until_closed_and_its_updates_are_kept(history):
    with history.transaction():
        ticket = history.remember_ticket(SERIES, "I-000042", "42", "Backup failed", "Demo", opened_at=5.0)

    assert ticket == TicketRecord(ticket.id, SERIES, "I-000042", "42", "Backup failed", "Demo", 5.0, None,
                                  None, "open")
    assert history.open_ticket(SERIES) == ticket
    assert history.open_ticket("other") is None
    with history.transaction():
        history.ticket_updated(ticket.id, 6.0)
    assert history.open_ticket(SERIES).last_update_at == 6.0
    with history.transaction():
        history.close_ticket(ticket.id, 7.0, "resolved")
    assert history.open_ticket(SERIES) is None
    [row] = history.listing("tickets")
    assert (row["closed_at"], row["last_update_at"], row["state"]) == (7.0, 7.0, "resolved")


def test_runs_are_listed_by_series_then_start(history):
    with history.transaction():
        history.record_run(SERIES, 20.0, 25.0, "/b/a.tar.gz", 100, "ok", "")
        history.record_run(SERIES, 10.0, 11.0, None, None, "failed", "timed out")

    listed = [(r["started"], r["status"], r["archive_path"], r["message"]) for r in history.listing("runs")]
    assert listed == [(10.0, "failed", None, "timed out"), (20.0, "ok", "/b/a.tar.gz", "")]


def test_a_failing_block_writes_nothing_of_its_transaction(history, tmp_path):
    with pytest.raises(RuntimeError), history.transaction():
        history.record_run(SERIES, 1.0, 2.0, None, None, "failed", "x")
        raise RuntimeError("the block fails")

    assert rows(tmp_path / "h.sqlite", "SELECT COUNT(*) FROM runs") == [(0,)]


def test_uploads_are_pending_until_done_once_per_archive_and_destination(tmp_path):
    history = History.open(str(tmp_path / "h.sqlite"))
    try:
        with history.transaction():
            history.upload_requested("s", "/b/a1.tar.gz", "s3://x/p/", 1.0)
            history.upload_requested("s", "/b/a2.tar.gz", "s3://x/p/", 2.0)
            history.upload_requested("s", "/b/a2.tar.gz", "s3://y/p/", 2.0)
            history.upload_requested("t", "/c/a1.tar.gz", "s3://x/p/", 0.5)
            history.upload_ended("/b/a1.tar.gz", "s3://x/p/", "pending", None, "503 Slow Down", 3.0)
            history.upload_requested("s", "/b/a1.tar.gz", "s3://x/p/", 4.0)  # a retry: still one row
        assert history.pending_uploads("s", "s3://x/p/") == ["/b/a1.tar.gz", "/b/a2.tar.gz"]
        with history.transaction():
            history.upload_ended("/b/a1.tar.gz", "s3://x/p/", "done", "p/a1.tar.gz", "SHA-256 …", 5.0)
            history.upload_requested("s", "/b/a1.tar.gz", "s3://x/p/", 6.0)  # done stays done
        assert history.pending_uploads("s", "s3://x/p/") == ["/b/a2.tar.gz"]
        rows = [(r["archive_path"], r["destination"], r["state"], r["object_key"])
                for r in history.listing("uploads")]
        assert rows == [("/b/a1.tar.gz", "s3://x/p/", "done", "p/a1.tar.gz"),
                        ("/b/a2.tar.gz", "s3://x/p/", "pending", None),
                        ("/b/a2.tar.gz", "s3://y/p/", "pending", None),
                        ("/c/a1.tar.gz", "s3://x/p/", "pending", None)]
    finally:
        history.close()
