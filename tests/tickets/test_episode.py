"""The ticket policy and its settings, against the fake iTop and a real history file."""

from __future__ import annotations

import argparse
import json

import pytest

from check_itop_backup import deadline
from check_itop_backup.cli.options import add_ticket_arguments
from check_itop_backup.history import History
from check_itop_backup.tickets import rest as itop_rest
from check_itop_backup.tickets.episode import Verdict, follow_up
from check_itop_backup.tickets.settings import PASSWORD_ENV, ticket_settings
from tests.fake_itop import TICKET_PARAMS

SERIES = "/var/backups/itop-%Y-%m-%d.tar.gz"
T0 = 1_795_000_000.0
HOUR = 3600.0
CRITICAL = Verdict("critical", "itop-2026-11-26.tar.gz is missing (backup due Thu 2026-11-26 23:30)",
                   ("pattern: /var/backups/itop-%Y-%m-%d.tar.gz",))
OK = Verdict("ok", "itop-2026-11-27.tar.gz: 2h old, 1.1 MiB")
PARAMS = TICKET_PARAMS


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ticket_arguments(parser)
    return parser.parse_args(argv)


def make_settings(fake_itop, *argv: str, params: dict | None = None, environ: dict | None = None):
    params = dict(PARAMS if params is None else params, itop_backup_incident=fake_itop.url)
    return ticket_settings(parse(*argv), params, environ or {})


@pytest.fixture
def history(tmp_path):
    opened = History.open(str(tmp_path / "history.sqlite"))
    yield opened
    opened.close()


def run(fake_itop, history, verdict: Verdict, now: float, *argv: str, **options) -> list[str]:
    return follow_up(make_settings(fake_itop, *argv, **options), history, SERIES, verdict, now)


def test_a_new_failure_searches_then_opens_one_incident_and_remembers_it(fake_itop, history):
    lines = run(fake_itop, history, CRITICAL, T0, "--ticket-caller", "agatha.christie@demo.com")

    assert lines == ["opened I-000001"]
    assert [r.operation for r in fake_itop.requests] == ["core/get", "core/create"]
    assert fake_itop.requests[0].json_data["key"] == (
        "SELECT Incident WHERE title = 'Backup check failed' AND org_name = 'Demo'"
        " AND status NOT IN ('resolved','closed')")
    fields = fake_itop.requests[1].json_data["fields"]
    assert {k: v for k, v in fields.items() if k != "description"} == {
        "org_id": "SELECT Organization WHERE name = 'Demo'",
        "caller_id": "SELECT Person WHERE email = 'agatha.christie@demo.com'",
        "title": "Backup check failed",
        "impact": "2",
        "urgency": "2",
        "origin": "monitoring",
        "service_id": "SELECT Service WHERE name = 'Computers and peripherals'",
        "servicesubcategory_id": "SELECT ServiceSubcategory AS sc JOIN Service AS s ON sc.service_id = s.id"
                                 " WHERE sc.name = 'Repair' AND s.name = 'Computers and peripherals'",
        "team_id": "SELECT Team WHERE name = 'Hardware support'",
        "functionalcis_list": [{"functionalci_id": "SELECT FunctionalCI WHERE name = 'source-itop.demo.com'",
                                "impact_code": "manual"}],
    }
    incident = fake_itop.incidents[1]
    assert (incident["caller_id"], incident["team_id"], incident["functionalcis_list"]) == (15, 38, [9])
    ticket = history.open_ticket(SERIES)
    assert (ticket.ref, ticket.itop_key, ticket.title, ticket.org, ticket.opened_at, ticket.state) == (
        "I-000001", "1", "Backup check failed", "Demo", T0, "open")


def test_a_caller_given_by_name_is_searched_by_friendly_name(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0, "--ticket-caller", "Agatha Christie")

    assert fake_itop.requests[1].json_data["fields"]["caller_id"] == (
        "SELECT Person WHERE friendlyname = 'Agatha Christie'")
    assert fake_itop.incidents[1]["caller_id"] == 15


def test_the_description_is_escaped_html_with_the_status_and_long_output(fake_itop, history):
    verdict = Verdict("critical", "x.tar.gz <is> missing & late", ("line <1>", "line 2"))

    run(fake_itop, history, verdict, T0)

    description = fake_itop.incidents[1]["description"]
    assert "<p>x.tar.gz &lt;is&gt; missing &amp; late</p>" in description
    assert "<p>line &lt;1&gt;<br>line 2</p>" in description
    assert f"Backup series: {SERIES}" in description
    assert description.startswith("<p>The iTop backup check is CRITICAL since ")


def test_the_next_failing_run_opens_no_second_incident_and_sends_nothing(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)

    lines = run(fake_itop, history, CRITICAL, T0 + HOUR)

    assert lines == ["ticket I-000001 open; next update in 23h 0m"]
    assert [r.operation for r in fake_itop.requests] == ["core/get", "core/create"]


def test_after_the_update_interval_one_log_entry_is_added(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0, "--ticket-update-every", "6h")

    lines = run(fake_itop, history, CRITICAL, T0 + 6 * HOUR, "--ticket-update-every", "6h")
    again = run(fake_itop, history, CRITICAL, T0 + 7 * HOUR, "--ticket-update-every", "6h")

    assert lines == ["updated I-000001"]
    assert again == ["ticket I-000001 open; next update in 5h 0m"]
    [update] = fake_itop.operations("core/update")
    assert update.json_data["key"] == "1"
    [entry] = fake_itop.incidents[1]["public_log"]
    assert entry["message"].startswith("Still CRITICAL at ")
    assert entry["message"].endswith(": " + CRITICAL.summary)
    assert history.open_ticket(SERIES).last_update_at == T0 + 6 * HOUR


def test_recovery_logs_it_and_ends_the_episode_without_resolving_by_default(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)

    lines = run(fake_itop, history, OK, T0 + HOUR)

    assert lines == ["recovered I-000001"]
    assert fake_itop.operations("core/apply_stimulus") == []
    assert fake_itop.incidents[1]["status"] == "new"
    assert fake_itop.incidents[1]["public_log"][0]["message"].endswith(
        ": the backup check is OK: " + OK.summary)
    assert history.open_ticket(SERIES) is None
    assert run(fake_itop, history, OK, T0 + 2 * HOUR) == []


def test_recovery_with_ticket_resolve_resolves_a_new_incident_with_ev_autoresolve(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)

    lines = run(fake_itop, history, OK, T0 + HOUR, "--ticket-resolve")

    assert lines == ["resolved I-000001"]
    [stimulus] = fake_itop.operations("core/apply_stimulus")
    assert stimulus.json_data["stimulus"] == "ev_autoresolve"
    assert stimulus.json_data["fields"]["resolution_code"] == "other"
    assert fake_itop.incidents[1]["status"] == "resolved"
    assert fake_itop.incidents[1]["solution"].startswith("<p>Recovered at ")


def test_a_failure_after_recovery_opens_a_new_incident(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)
    run(fake_itop, history, OK, T0 + HOUR, "--ticket-resolve")

    assert run(fake_itop, history, CRITICAL, T0 + 2 * HOUR) == ["opened I-000002"]


def test_a_lost_history_finds_the_open_incident_in_itop_instead_of_opening_another(fake_itop, history):
    existing = fake_itop.add_incident("Backup check failed", status="assigned")

    lines = run(fake_itop, history, CRITICAL, T0)

    assert lines == [f"updated {existing['ref']} (found open in iTop)"]
    assert fake_itop.operations("core/create") == []
    assert len(fake_itop.incidents[existing["id"]]["public_log"]) == 1
    ticket = history.open_ticket(SERIES)
    assert (ticket.ref, ticket.last_update_at) == (existing["ref"], T0)


def test_an_incident_resolved_in_itop_while_failing_starts_a_new_one(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)
    fake_itop.incidents[1]["status"] = "resolved"

    lines = run(fake_itop, history, CRITICAL, T0 + 25 * HOUR)

    assert lines == ["I-000001 is resolved in iTop", "opened I-000002"]
    assert history.open_ticket(SERIES).ref == "I-000002"


def test_warning_opens_nothing_unless_ticket_on_warning(fake_itop, history):
    warning = Verdict("warning", "itop.tar.gz is 27h old (more than 26h)")

    assert run(fake_itop, history, warning, T0) == []
    assert fake_itop.requests == []
    assert run(fake_itop, history, warning, T0, "--ticket-on", "warning") == ["opened I-000001"]


def test_unknown_is_not_a_recovery(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0)

    assert run(fake_itop, history, Verdict("unknown", "timed out"), T0 + HOUR) == []
    assert history.open_ticket(SERIES).ref == "I-000001"


def test_an_ok_check_without_an_open_ticket_talks_to_nobody(fake_itop, history):
    assert run(fake_itop, history, OK, T0) == []
    assert fake_itop.requests == []


def test_an_itop_error_is_a_ticket_failed_line_and_nothing_is_remembered(fake_itop, history):
    lines = run(fake_itop, history, CRITICAL, T0, params=dict(PARAMS, check_ticket_pwd="wrong"))

    assert lines == ["ticket failed: iTop said code 1 Invalid login (unauthorized: check the login, the"
                     " password and the user's profiles (REST Services User and Service Desk Agent))"]
    assert history.open_ticket(SERIES) is None


def test_an_unknown_organisation_is_a_ticket_failed_line(fake_itop, history):
    lines = run(fake_itop, history, CRITICAL, T0, "--ticket-customer", "NoSuchOrg")

    assert lines == ["ticket failed: iTop said code 100 org_id: No item found for query: SELECT Organization"
                     " WHERE name = 'NoSuchOrg' (iTop refused the data)"]


def test_a_ci_or_team_itop_cannot_find_does_not_cost_the_ticket(fake_itop, history):
    lines = run(fake_itop, history, CRITICAL, T0, "--ticket-impacted-server", "no-such-server")

    assert lines == ["opened I-000001 without its links (iTop said code 100 functionalci_id: No item found"
                     " for query: SELECT FunctionalCI WHERE name = 'no-such-server' (iTop refused the data))"]
    first, second = (r.json_data["fields"] for r in fake_itop.operations("core/create"))
    assert "functionalcis_list" in first
    assert set(first) - set(second) == {"service_id", "servicesubcategory_id", "team_id",
                                        "functionalcis_list"}
    assert fake_itop.incidents[1]["description"].endswith(
        "<p>Not linked: iTop said functionalci_id: No item found for query: SELECT FunctionalCI WHERE name ="
        " &#x27;no-such-server&#x27;</p>")
    assert history.open_ticket(SERIES).ref == "I-000001"


def test_an_unknown_organisation_is_not_retried(fake_itop, history):
    run(fake_itop, history, CRITICAL, T0, "--ticket-customer", "NoSuchOrg")

    assert len(fake_itop.operations("core/create")) == 1


def test_missing_settings_are_reported_when_a_ticket_is_due_and_nothing_is_sent(fake_itop, history):
    params = {k: v for k, v in PARAMS.items() if k not in ("check_ticket_customer", "check_ticket_pwd")}

    lines = run(fake_itop, history, CRITICAL, T0, params=params)

    assert lines == [f"ticket failed: no iTop password (--itop-password-file, ${PASSWORD_ENV} or"
                     " check_ticket_pwd); no organisation (--ticket-customer or check_ticket_customer)"]
    assert fake_itop.requests == []


def test_a_broken_history_is_a_ticket_failed_line(fake_itop, history):
    history.connection.execute("DROP TABLE tickets")

    lines = run(fake_itop, history, CRITICAL, T0)

    assert lines == [f"ticket failed: cannot read history {history.path}: no such table: tickets"]


def test_the_plugins_deadline_firing_during_ticket_work_is_a_ticket_failed_line(fake_itop, history,
                                                                               monkeypatch):
    fake_itop.mode, fake_itop.delay = "slow", 3
    monkeypatch.setattr(itop_rest, "RESERVE_S", -5.0)  # let the HTTP timeout outlast the alarm
    monkeypatch.setattr(deadline, "current", deadline.Deadline(0.5))
    deadline.current.start()
    try:
        lines = run(fake_itop, history, CRITICAL, T0)
    finally:
        deadline.current.cancel()

    assert lines == ["ticket failed: timed out after 0.5s while opening an iTop ticket"]


def test_dry_run_shows_the_requests_with_the_password_masked_and_sends_nothing(fake_itop, history):
    lines = run(fake_itop, history, CRITICAL, T0, "--ticket-dry-run")

    assert fake_itop.requests == []
    assert history.open_ticket(SERIES) is None
    assert [line.split(" {")[0] for line in lines] == [
        "dry run: would POST", "dry run: would POST", "dry run: opened I-(dry run)"]
    search, create = (json.loads(line.split("would POST ", 1)[1]) for line in lines[:2])
    assert search["url"] == fake_itop.url + "/webservices/rest.php"
    assert search["form"]["auth_pwd"] == "********"
    assert search["form"]["json_data"]["operation"] == "core/get"
    assert create["form"]["json_data"]["fields"]["title"] == "Backup check failed"
    assert "rest-password" not in "\n".join(lines)


def test_the_password_never_reaches_the_ticket_even_if_the_check_text_contains_it(fake_itop, history):
    verdict = Verdict("critical", "weird rest-password in a file name", ("rest-password",))

    run(fake_itop, history, verdict, T0)
    run(fake_itop, history, verdict, T0 + 25 * HOUR)

    sent = json.dumps([r.json_data for r in fake_itop.requests])
    assert "rest-password" not in sent and "********" in sent


# Settings -----------------------------------------------------------------------------------------


def test_tickets_are_off_without_an_itop_url():
    assert ticket_settings(parse(), PARAMS, {}) is None


def test_param_file_keys_fill_the_settings_and_the_command_line_wins(fake_itop):
    settings = make_settings(fake_itop, "--ticket-title", "Sauvegarde iTop en échec", "--itop-user", "bot")

    assert (settings.url, settings.user, settings.password, settings.title, settings.customer) == (
        fake_itop.url, "bot", "rest-password", "Sauvegarde iTop en échec", "Demo")
    assert (settings.service, settings.service_subcategory, settings.workgroup, settings.impacted_server) == (
        "Computers and peripherals", "Repair", "Hardware support", "source-itop.demo.com")
    assert (settings.update_every, settings.verify, settings.problems) == (86400.0, True, ())
    assert "rest-password" not in repr(settings)


def test_the_default_title_names_the_impacted_server(fake_itop):
    params = {k: v for k, v in PARAMS.items() if k != "check_ticket_title"}

    assert make_settings(fake_itop, params=params).title == "Backup check failed on source-itop.demo.com"


def test_the_password_file_wins_over_the_environment_which_wins_over_the_param_file(fake_itop, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\nsecond line ignored\n")
    environ = {PASSWORD_ENV: "from-env"}
    from_file = make_settings(fake_itop, "--itop-password-file", str(secret), environ=environ)

    assert from_file.password == "from-file"
    assert make_settings(fake_itop, environ=environ).password == "from-env"
    assert make_settings(fake_itop).password == "rest-password"


def test_an_unreadable_password_file_is_a_problem_not_a_crash(fake_itop, tmp_path):
    settings = make_settings(fake_itop, "--itop-password-file", str(tmp_path / "missing"))

    assert settings.problems == (f"cannot read --itop-password-file {tmp_path / 'missing'}: No such file or"
                                 " directory",)


def test_tls_options_map_to_requests_verify(fake_itop):
    assert make_settings(fake_itop, "--itop-insecure").verify is False
    assert make_settings(fake_itop, "--itop-ca-bundle", "/etc/ca.pem").verify == "/etc/ca.pem"


def test_a_bad_update_interval_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse("--ticket-update-every", "soon")

    assert "invalid duration 'soon'" in capsys.readouterr().err
