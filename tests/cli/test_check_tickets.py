"""check_itop_backup with iTop tickets, against the fake iTop: what the monitoring system and iTop see.

The backup's verdict (status line, exit code) must be the same whatever happens to the ticket.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check
from tests.fake_itop import TICKET_PARAMS, free_port

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=PARIS)  # the Thursday 23:30 backup is due
MISSING = ("ITOP_BACKUP CRITICAL - itop-2026-11-26.tar.gz is missing (backup due Thu 2026-11-26 23:30); "
           "no archive matches {tmp_path}/itop-*-*-*.tar.gz")
PASSWORD = "S3cret-pw!"


def write_params(tmp_path: Path, url: str, **changes: str) -> Path:
    """An iTop param file with the check-backup.php ticket keys, pointed at *url*."""
    params = {**TICKET_PARAMS, "itop_backup_incident": url, "check_ticket_pwd": PASSWORD, **changes}
    path = tmp_path / "backup.params"
    path.write_text("".join(f"{key} = {value}\n" for key, value in params.items()))
    return path


@pytest.fixture
def itop(fake_itop):
    fake_itop.users["rest"] = PASSWORD
    return fake_itop


def check(tmp_path: Path, *extra: str, now: datetime = NOW):
    return run_check("-f", tmp_path / "__DB__-%Y-%m-%d", "--db-name", "itop", "--timezone", "Europe/Paris",
                     "--now", now.isoformat(), *extra)


def check_with_tickets(tmp_path: Path, url: str, *extra: str, now: datetime = NOW, **params: str):
    return check(tmp_path, "--param-file", write_params(tmp_path, url, **params), *extra, now=now)


def recover(tmp_path: Path) -> None:
    place_archive(tmp_path / "itop-2026-11-27.tar.gz", NOW + timedelta(hours=2))


def test_a_new_failure_opens_one_incident_and_says_so_under_the_unchanged_status_line(tmp_path, itop):
    run = check_with_tickets(tmp_path, itop.url)

    assert run.exit_code == 2
    assert run.status_line == MISSING.format(tmp_path=tmp_path)
    assert run.long_output == ["opened I-000001"]
    assert [r.operation for r in itop.requests] == ["core/get", "core/create"]
    create = itop.requests[1]
    assert create.form["auth_user"] == "rest"
    fields = create.json_data["fields"]
    assert (fields["title"], fields["org_id"], fields["origin"]) == (
        "Backup check failed", "SELECT Organization WHERE name = 'Demo'", "monitoring")
    assert "<p>" + MISSING.format(tmp_path=tmp_path).split(" - ", 1)[1] + "</p>" in fields["description"]


def test_the_next_run_opens_no_second_incident(tmp_path, itop):
    check_with_tickets(tmp_path, itop.url)

    run = check_with_tickets(tmp_path, itop.url, now=NOW + timedelta(minutes=5))

    assert run.exit_code == 2
    assert run.long_output == ["ticket I-000001 open; next update in 23h 55m"]
    assert len(itop.operations("core/create")) == 1
    assert len(itop.requests) == 2


def test_a_log_entry_is_added_once_the_update_interval_has_passed(tmp_path, itop):
    check_with_tickets(tmp_path, itop.url, "--ticket-update-every", "12h")
    check_with_tickets(tmp_path, itop.url, "--ticket-update-every", "12h", now=NOW + timedelta(hours=11))

    run = check_with_tickets(tmp_path, itop.url, "--ticket-update-every", "12h",
                             now=NOW + timedelta(hours=12))

    assert run.exit_code == 2
    assert run.long_output == ["updated I-000001"]
    [update] = itop.operations("core/update")
    assert update.json_data["fields"]["public_log"]["add_item"]["message"].startswith("Still CRITICAL at ")
    assert len(itop.operations("core/create")) == 1


def test_recovery_with_ticket_resolve_resolves_the_incident(tmp_path, itop):
    check_with_tickets(tmp_path, itop.url)
    recover(tmp_path)

    run = check_with_tickets(tmp_path, itop.url, "--ticket-resolve", now=NOW + timedelta(hours=3))

    assert run.exit_code == 0
    assert run.status_line.startswith("ITOP_BACKUP OK - itop-2026-11-27.tar.gz: 1h 0m old")
    assert run.long_output == ["resolved I-000001"]
    [stimulus] = itop.operations("core/apply_stimulus")
    assert (stimulus.json_data["key"], stimulus.json_data["stimulus"]) == ("1", "ev_autoresolve")
    assert itop.incidents[1]["status"] == "resolved"
    assert itop.incidents[1]["public_log"][-1]["message"].startswith("Recovered at ")


def test_with_the_history_deleted_the_open_incident_is_found_in_itop_not_duplicated(tmp_path, itop):
    check_with_tickets(tmp_path, itop.url)
    for leftover in tmp_path.glob("history.sqlite*"):
        leftover.unlink()

    run = check_with_tickets(tmp_path, itop.url, now=NOW + timedelta(minutes=5))

    assert run.exit_code == 2
    assert run.long_output == ["updated I-000001 (found open in iTop)"]
    assert len(itop.operations("core/create")) == 1
    assert len(itop.operations("core/get")) == 2


def failure_setup(case: str, tmp_path: Path, itop) -> tuple[str, dict, str]:
    """(iTop URL, param changes, expected ticket line) for one way iTop can fail."""
    url = itop.url
    if case == "auth failure":
        return url, {"check_ticket_pwd": "wrong"}, "ticket failed: iTop said code 1 Invalid login (unauth"
    if case == "unknown organisation":
        return url, {"check_ticket_customer": "NoSuchOrg"}, (
            "ticket failed: iTop said code 100 org_id: No item found for query: SELECT Organization WHERE"
            " name = 'NoSuchOrg' (iTop refused the data)")
    if case == "connection refused":
        refused = f"http://127.0.0.1:{free_port()}"
        return refused, {}, f"ticket failed: cannot connect to iTop at {refused}: Connection refused"
    itop.mode = {"HTML body": "html", "HTTP 500": "http500", "slow server": "slow"}[case]
    itop.delay = 10
    return url, {}, {
        "html": f"ticket failed: iTop at {url} answered an HTML page (iTop login) instead of JSON",
        "http500": f"ticket failed: iTop at {url} answered HTTP 500 Internal Server Error",
        "slow": f"ticket failed: iTop at {url} did not answer within 0.",  # --timeout 2, 1 s kept back
    }[itop.mode]


FAILURES = ["auth failure", "unknown organisation", "HTML body", "HTTP 500", "connection refused",
            "slow server"]


@pytest.mark.parametrize("case", FAILURES)
def test_a_failing_itop_leaves_a_critical_backup_critical(tmp_path, itop, case):
    url, params, line = failure_setup(case, tmp_path, itop)
    started = time.monotonic()

    run = check_with_tickets(tmp_path, url, "--timeout", "2", **params)

    assert run.exit_code == 2
    assert run.status_line == MISSING.format(tmp_path=tmp_path)
    [ticket_line] = run.long_output
    assert ticket_line.startswith(line)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("case", [case for case in FAILURES if case != "unknown organisation"])
def test_a_failing_itop_never_makes_a_recovered_backup_unknown(tmp_path, itop, case):
    check_with_tickets(tmp_path, itop.url)  # opens I-000001 while iTop works
    recover(tmp_path)
    url, params, line = failure_setup(case, tmp_path, itop)

    run = check_with_tickets(tmp_path, url, "--timeout", "2", now=NOW + timedelta(hours=3), **params)

    assert run.exit_code == 0
    assert run.status_line.startswith("ITOP_BACKUP OK - itop-2026-11-27.tar.gz: 1h 0m old")
    [ticket_line] = run.long_output
    assert ticket_line.startswith(line)
    itop.mode = "normal"
    retried = check_with_tickets(tmp_path, itop.url, now=NOW + timedelta(hours=4))
    assert retried.long_output == ["recovered I-000001"]  # the episode stayed open: tried again


def test_the_password_is_absent_from_stdout_the_history_and_the_ticket(tmp_path, itop):
    def hours_later(hours: int, *extra: str) -> str:
        return check_with_tickets(tmp_path, itop.url, "-vvv", *extra, now=NOW + timedelta(hours=hours)).stdout

    outputs = [hours_later(0), hours_later(25),
               hours_later(26, "--ticket-dry-run", "--ticket-update-every", "1h")]
    recover(tmp_path)
    outputs += [hours_later(27, "--ticket-resolve"), hours_later(28, "--format", "json")]

    assert "opened I-000001" in outputs[0].splitlines()
    assert "updated I-000001" in outputs[1].splitlines()
    assert "dry run: would POST" in outputs[2]
    assert "resolved I-000001" in outputs[3].splitlines()
    assert all(PASSWORD not in output for output in outputs)
    history_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("history.sqlite*"))
    assert b"I-000001" in history_bytes and PASSWORD.encode() not in history_bytes
    incident = itop.incidents[1]
    ticket_text = json.dumps([incident["title"], incident["description"], incident["public_log"],
                              incident["solution"]])
    assert "Backup check failed" in ticket_text and PASSWORD not in ticket_text


def test_dry_run_prints_the_requests_with_the_password_masked_and_sends_nothing(tmp_path, itop):
    run = check_with_tickets(tmp_path, itop.url, "--ticket-dry-run")

    assert run.exit_code == 2
    assert itop.requests == []
    assert [line.split(" {")[0] for line in run.long_output] == [
        "dry run: would POST", "dry run: would POST", "dry run: opened I-(dry run)"]
    create = json.loads(run.long_output[1].split("would POST ", 1)[1])
    assert create["form"]["auth_pwd"] == "********"
    assert create["form"]["json_data"]["fields"]["team_id"] == "SELECT Team WHERE name = 'Hardware support'"


def test_command_line_options_override_the_param_file(tmp_path, itop):
    run = check_with_tickets(tmp_path, itop.url, "--ticket-title", "iTop prod backup", "--ticket-impact", "1",
                             "--ticket-urgency", "1", "--ticket-caller", "Agatha Christie")

    assert run.long_output == ["opened I-000001"]
    fields = itop.operations("core/create")[0].json_data["fields"]
    assert (fields["title"], fields["impact"], fields["urgency"], fields["caller_id"]) == (
        "iTop prod backup", "1", "1", "SELECT Person WHERE friendlyname = 'Agatha Christie'")


def test_the_itop_url_may_come_from_itops_config_as_for_check_backup_php(tmp_path, itop):
    config = tmp_path / "itop" / "conf" / "production" / "config-itop.php"
    config.parent.mkdir(parents=True)
    with tarfile.open(ITOP_ARCHIVE) as archive:  # the real config, its itop_backup_incident set
        text = archive.extractfile("config-itop.php").read().decode()
    config.write_text(text.replace("'itop_backup_incident' => ''", f"'itop_backup_incident' => '{itop.url}'"))
    params = write_params(tmp_path, "")

    run = run_check("--itop-config", config, "--param-file", params, "--now", "2026-11-30T18:00:00+00:00")

    assert run.exit_code == 2
    assert run.long_output == ["opened I-000001"]
    assert itop.requests[0].path == "/itop/webservices/rest.php"


def test_an_ok_run_without_an_open_ticket_does_not_import_requests(tmp_path, itop):
    recover(tmp_path)
    params = write_params(tmp_path, itop.url)
    argv = ["-f", str(tmp_path / "__DB__-%Y-%m-%d"), "--db-name", "itop", "--timezone", "Europe/Paris",
            "--now", (NOW + timedelta(hours=3)).isoformat(), "--param-file", str(params)]
    code = ("import sys\n"
            "from check_itop_backup.cli.check import check_main\n"
            "try:\n"
            f"    check_main({argv!r})\n"
            "except SystemExit as exit_:\n"
            "    print('exit', exit_.code, 'requests' in sys.modules)\n")

    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env={"CHECK_ITOP_BACKUP_HISTORY": str(tmp_path / "history.sqlite"),
                                   "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[2])

    assert finished.stdout.splitlines()[-1] == "exit 0 False"
    assert itop.requests == []
