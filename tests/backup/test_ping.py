"""backup/ping.py against a real HTTP server: each service's requests, retries, the log's tail."""

from __future__ import annotations

import logging
import uuid

from check_itop_backup.backup.ping import BODY_LIMIT, LogTail, Pinger
from tests.ping_server import Ping, PingServer, closed_port_url


def test_healthchecks_gets_start_then_the_exit_status_with_the_log_and_one_run_id():
    with PingServer() as server:
        pinger = Pinger(f"{server.url}/ping/5f3e?create=1", timeout=5)
        pinger.start()
        pinger.finish(1, "ERROR: mysqldump failed\n")
    rid = pinger.run_id
    assert str(uuid.UUID(rid)) == rid
    assert server.pings == [
        Ping("GET", "/ping/5f3e/start", {"create": "1", "rid": rid}, ""),
        Ping("POST", "/ping/5f3e/1", {"create": "1", "rid": rid}, "ERROR: mysqldump failed\n")]
    assert pinger.warning() is None


def test_two_runs_have_two_run_ids():
    assert Pinger("http://127.0.0.1/x").run_id != Pinger("http://127.0.0.1/x").run_id


def test_uptime_kuma_gets_up_or_down_with_the_last_line_and_no_start():
    with PingServer() as server:
        for status in (0, 1):
            pinger = Pinger(f"{server.url}/api/push/Tok3n?status=up&msg=OK&ping=", timeout=5)
            pinger.start()
            pinger.finish(status, "INFO: dumping\nitop-backup run: disk full\n")
    assert [(p.path, p.query["status"], p.query["msg"]) for p in server.pings] == [
        ("/api/push/Tok3n", "up", "itop-backup run: disk full"),
        ("/api/push/Tok3n", "down", "itop-backup run: disk full")]
    assert all(p.query["ping"].isdigit() for p in server.pings)


def test_cronitor_gets_run_then_complete_or_fail_in_one_series():
    with PingServer() as server:
        pinger = Pinger(f"{server.url}/p/KEY/itop-backup", timeout=5)
        pinger.protocol = "cronitor"  # known from the host cronitor.link, which this server is not
        pinger.start()
        pinger.finish(1, "itop-backup run: access denied\n")
    assert server.pings == [
        Ping("GET", "/p/KEY/itop-backup", {"state": "run", "series": pinger.run_id}, ""),
        Ping("GET", "/p/KEY/itop-backup", {"state": "fail", "series": pinger.run_id,
                                           "message": "itop-backup run: access denied",
                                           "status_code": "1"}, "")]


def test_a_server_error_is_tried_again_and_a_refusal_is_not():
    with PingServer(statuses=(503, 500)) as server:
        pinger = Pinger(f"{server.url}/ping/a", timeout=5)
        pinger.finish(0, "")
    assert len(server.pings) == 3 and pinger.warning() is None
    with PingServer(statuses=(404,)) as server:
        pinger = Pinger(f"{server.url}/ping/a", timeout=5)
        pinger.finish(0, "")
    assert len(server.pings) == 1
    assert pinger.warning() == (f"ping to {server.url[7:]} failed (success: HTTP 404); the run's result "
                                "is unchanged")


def test_a_service_that_is_down_is_one_warning_naming_only_its_host():
    url = closed_port_url() + "/secret-uuid"
    pinger = Pinger(url, timeout=1)
    pinger.start()
    pinger.finish(0, "")
    host = url.split("/")[2]
    assert pinger.warning() == (f"ping to {host} failed (start: cannot connect: Connection refused "
                                "(3 attempts); success: cannot connect: Connection refused (3 attempts)); "
                                "the run's result is unchanged")


def test_a_slow_service_is_given_up_after_the_timeout_of_each_attempt():
    with PingServer(hold=True) as server:  # answers nothing before the block ends
        pinger = Pinger(f"{server.url}/ping/slow", timeout=0.5)
        pinger.finish(0, "log")
        assert len(server.pings) == 3
    assert pinger.warning() == (f"ping to {server.url[7:]} failed (success: no answer within 0.5s "
                                "(3 attempts)); the run's result is unchanged")


def test_the_log_tail_keeps_the_last_10_kb_in_whole_lines():
    tail = LogTail()
    logger = logging.getLogger("check_itop_backup.test_ping")
    logger.addHandler(tail)
    logger.setLevel(logging.INFO)
    try:
        for number in range(2000):
            logger.info("line %04d", number)
    finally:
        logger.removeHandler(tail)
    text = tail.text()
    assert len(text.encode()) <= BODY_LIMIT
    assert text.endswith("INFO: line 1999\n")
    assert text.startswith("INFO: line ")  # whole lines only
    assert len(text.encode()) > BODY_LIMIT - 20
