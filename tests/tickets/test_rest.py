"""The iTop REST client against a fake iTop that answers as the recorded iTop 3.2 exchanges show."""

from __future__ import annotations

import json
import time
import warnings

import pytest
import requests

from check_itop_backup import deadline
from check_itop_backup.tickets.rest import DryRunClient, Incident, ItopClient, ItopError, find_open_request
from tests.fake_itop import RECORDED, TLS_CERT, FakeItop, free_port

FIELDS = {
    "org_id": "SELECT Organization WHERE name = 'Demo'",
    "caller_id": "SELECT Person WHERE email = 'agatha.christie@demo.com'",
    "title": "Backup check failed on source-itop.demo.com",
    "description": "<p>itop-2026-11-26.tar.gz is missing</p>",
    "impact": "2",
    "urgency": "2",
    "origin": "monitoring",
}


def recorded(case: str) -> tuple[dict, dict]:
    """The recorded request (method, form fields…) and the body iTop answered."""
    request = json.loads((RECORDED / f"{case}.request.json").read_text())
    return request, json.loads((RECORDED / f"{case}.response.json").read_text())


def replay(fake_itop, case: str) -> tuple[dict, dict]:
    """Send a recorded request to the fake as it was sent to iTop; return (fake's body, iTop's body)."""
    request, itop_body = recorded(case)
    answer = requests.post(fake_itop.url + "/webservices/rest.php", data=request["form_fields"],
                           headers=request["extra_headers"], timeout=5)
    assert answer.status_code == 200
    return answer.json(), itop_body


def client(fake_itop, password: str = "rest-password", **options) -> ItopClient:
    return ItopClient(fake_itop.url, "rest", password, **options)


@pytest.mark.parametrize("case", [
    "admin_without_rest_profile", "create_incident_bad_impact", "create_incident_missing_org",
    "create_incident_missing_title", "create_incident_nonexistent_caller", "create_incident_nonexistent_org",
    "create_incident_unknown_class", "create_incident_unknown_field", "create_incident_unknown_user",
    "create_incident_wrong_password", "get_incident_by_numeric_key_not_found", "get_incident_none",
    "list_operations",
    "malformed_json_data", "missing_auth_pwd", "missing_auth_user", "missing_json_data", "missing_operation",
    "missing_version", "unknown_operation", "update_incident_nonexistent_key", "version_9_9",
    "x_auth_token_header_only",
])
def test_the_fake_answers_every_recorded_error_and_listing_exactly_as_itop_did(fake_itop, case):
    answer, itop_answer = replay(fake_itop, case)

    assert answer == itop_answer


def test_the_fake_follows_a_recorded_create_update_and_search_as_itop_did(fake_itop):
    for case in ("create_incident", "update_incident_public_log", "get_incident_open",
                 "update_incident_by_oql_public_log"):
        answer, itop_answer = replay(fake_itop, case)

        assert (answer["code"], answer["message"]) == (itop_answer["code"], itop_answer["message"]), case
        [(name, item)] = answer["objects"].items()
        [(itop_name, itop_item)] = itop_answer["objects"].items()
        assert (name, item["message"], item["key"]) == (
            itop_name, itop_item["message"], itop_item["key"]), case
        for field in ("ref", "status", "title"):
            assert item["fields"].get(field) == itop_item["fields"].get(field), (case, field)


def test_create_incident_posts_itops_form_fields_and_returns_the_ref(fake_itop):
    incident = client(fake_itop).create_incident(FIELDS, "check_itop_backup")

    assert incident == Incident(key="1", ref="I-000001", status="new")
    [received] = fake_itop.requests
    assert received.method == "POST"
    assert received.path == "/itop/webservices/rest.php"
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {k: v for k, v in received.form.items() if k != "json_data"} == {
        "version": "1.3", "auth_user": "rest", "auth_pwd": "rest-password"}
    assert received.json_data == {"operation": "core/create", "comment": "check_itop_backup",
                                  "class": "Incident", "output_fields": "id,ref,status", "fields": FIELDS}
    assert fake_itop.incidents[1]["org_name"] == "Demo"


def test_basic_auth_sends_login_mode_basic_and_no_password_field(fake_itop):
    incident = client(fake_itop, basic_auth=True).create_incident(FIELDS, "c")

    assert incident.ref == "I-000001"
    [received] = fake_itop.requests
    assert received.form["login_mode"] == "basic"
    assert "auth_pwd" not in received.form and "auth_user" not in received.form
    assert received.headers["Authorization"] == "Basic cmVzdDpyZXN0LXBhc3N3b3Jk"  # rest:rest-password


def test_the_api_version_is_sent_as_given(fake_itop):
    client(fake_itop, version="1.0").find_open_incident("t", "Demo")

    assert fake_itop.requests[0].form["version"] == "1.0"


def test_find_open_incident_returns_none_when_itop_answers_objects_null(fake_itop):
    assert client(fake_itop).find_open_incident("Backup check failed", "Demo") is None


def test_find_open_incident_matches_title_and_organisation_and_skips_resolved_and_closed(fake_itop):
    fake_itop.add_incident("Backup check failed", status="resolved")
    fake_itop.add_incident("Backup check failed", status="closed")
    fake_itop.add_incident("Backup check failed", org="IT Department")
    fake_itop.add_incident("Backup check failed (other)")
    wanted = fake_itop.add_incident("Backup check failed", status="assigned")
    fake_itop.add_incident("Backup check failed")  # a later duplicate: the oldest open one wins

    found = client(fake_itop).find_open_incident("Backup check failed", "Demo")

    assert found == Incident(key=str(wanted["id"]), ref=wanted["ref"], status="assigned")
    assert fake_itop.requests[0].json_data["key"] == (
        "SELECT Incident WHERE title = 'Backup check failed' AND org_name = 'Demo'"
        " AND status NOT IN ('resolved','closed')")


def test_quotes_in_title_and_organisation_are_escaped_in_the_oql(fake_itop):
    fake_itop.objects["Organization"].append({"id": 4, "name": "O'Brien & Co"})
    wanted = fake_itop.add_incident("it's down", org="O'Brien & Co")

    found = client(fake_itop).find_open_incident("it's down", "O'Brien & Co")

    assert found.ref == wanted["ref"]
    oql = find_open_request("it's down", "x")["key"]
    assert oql.startswith("SELECT Incident WHERE title = 'it\\'s down'")


def test_add_public_log_appends_a_text_entry(fake_itop):
    key = str(fake_itop.add_incident("t")["id"])

    incident = client(fake_itop).add_public_log(key, "Still CRITICAL", "check_itop_backup")

    assert incident.status == "new"
    assert [entry["message"] for entry in fake_itop.incidents[int(key)]["public_log"]] == ["Still CRITICAL"]
    assert fake_itop.requests[0].json_data["fields"] == {
        "public_log": {"add_item": {"message": "Still CRITICAL", "format": "text"}}}


@pytest.mark.parametrize("status", ["new", "assigned", "pending", "escalated_tto", "escalated_ttr"])
def test_resolve_works_from_every_open_status_with_ev_autoresolve(fake_itop, status):
    key = str(fake_itop.add_incident("t", status=status)["id"])

    incident = client(fake_itop).resolve(key, "<p>Backup fixed</p>", "check_itop_backup")

    assert incident.status == "resolved"
    sent = fake_itop.requests[0].json_data
    assert (sent["stimulus"], sent["fields"]) == (
        "ev_autoresolve", {"resolution_code": "other", "solution": "<p>Backup fixed</p>"})


def test_the_fake_refuses_ev_resolve_on_a_new_incident_as_itop_does(fake_itop):
    key = str(fake_itop.add_incident("t")["id"])
    payload = {"operation": "core/apply_stimulus", "comment": "c", "class": "Incident", "key": key,
               "stimulus": "ev_resolve", "fields": {"solution": "x"}}

    with pytest.raises(ItopError) as raised:
        client(fake_itop).call(payload)

    assert raised.value.code == 100
    assert str(raised.value) == ("iTop said code 100 Invalid stimulus: 'ev_resolve' on the object I-000001"
                                 " in state 'new' (iTop refused the data)")


def test_a_wrong_password_is_code_1_invalid_login_with_a_hint(fake_itop):
    with pytest.raises(ItopError) as raised:
        client(fake_itop, password="wrong-password").create_incident(FIELDS, "c")

    assert raised.value.code == 1
    assert str(raised.value) == ("iTop said code 1 Invalid login (unauthorized: check the login, the password"
                                 " and the user's profiles (REST Services User and Service Desk Agent))")


def test_a_user_without_the_rest_profile_is_told_which_profile_is_missing(fake_itop):
    with pytest.raises(ItopError, match="code 1 This user is not authorized .*Services User is required"):
        ItopClient(fake_itop.url, "admin", "admin-password").find_open_incident("t", "Demo")


def test_an_unknown_organisation_is_code_100_naming_the_query(fake_itop):
    with pytest.raises(ItopError) as raised:
        client(fake_itop).create_incident(dict(FIELDS, org_id="SELECT Organization WHERE name = 'Nope'"), "c")

    assert raised.value.code == 100
    assert str(raised.value) == ("iTop said code 100 org_id: No item found for query: SELECT Organization"
                                 " WHERE name = 'Nope' (iTop refused the data)")


@pytest.mark.parametrize("version, payload, message", [
    ("", {"operation": "core/get"}, "iTop said code 2 Missing parameter 'version' (e.g. '1.0') (the request"
                                    " had no version)"),
    ("1.3", {"operation": "core/nosuchop"}, "iTop said code 11 Unknown verb 'core/nosuchop' in version '1.3'"
                                            " (this iTop does not know that operation)"),
])
def test_protocol_errors_are_named(fake_itop, version, payload, message):
    with pytest.raises(ItopError) as raised:
        client(fake_itop, version=version).call(payload)

    assert str(raised.value) == message


def test_an_unsupported_version_is_code_10(fake_itop):
    with pytest.raises(ItopError, match=r"^iTop said code 10 There is no service available for version '9\.9'"
                                        r" \(this iTop does not offer that REST version"):
        client(fake_itop, version="9.9").find_open_incident("t", "Demo")


@pytest.mark.parametrize("mode, message", [
    ("html", "iTop at {url} answered an HTML page (iTop login) instead of JSON: check the URL and the login"
             " mode"),
    ("maintenance", "iTop at {url} is in maintenance (HTTP 503: This application is currently under"
                    " maintenance.)"),
    ("http500", "iTop at {url} answered HTTP 500 Internal Server Error"),
    ("not_json", "iTop at {url} answered something that is not JSON: PHP Fatal error: Allowed memory size"
                 " exhausted"),
])
def test_a_server_that_is_not_itop_answering_gives_one_clear_line(fake_itop, mode, message):
    fake_itop.mode = mode

    with pytest.raises(ItopError) as raised:
        client(fake_itop).find_open_incident("t", "Demo")

    assert str(raised.value) == message.format(url=fake_itop.url)


def test_a_wrong_url_gives_the_http_status(fake_itop):
    with pytest.raises(ItopError, match=r"answered HTTP 404 Not Found$"):
        ItopClient(fake_itop.url + "/nope", "rest", "rest-password").find_open_incident("t", "Demo")


def test_a_refused_connection_gives_one_line():
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ItopError) as raised:
        ItopClient(url, "rest", "pw").find_open_incident("t", "Demo")

    assert str(raised.value) == f"cannot connect to iTop at {url}: Connection refused"


def test_a_tls_error_gives_one_line(fake_itop):
    url = fake_itop.url.replace("http://", "https://")

    with pytest.raises(ItopError, match=r"^TLS error with iTop at https://127\.0\.0\.1:\d+/itop: \S"):
        ItopClient(url, "rest", "rest-password", timeout=3).find_open_incident("t", "Demo")


def test_an_untrusted_certificate_is_refused_by_default():
    with FakeItop(tls=True) as itop:
        with pytest.raises(ItopError) as raised:
            client(itop).find_open_incident("t", "Demo")

        assert str(raised.value) == (f"TLS error with iTop at {itop.url}: certificate verify failed:"
                                     " self-signed certificate")
        assert itop.requests == []


@pytest.mark.parametrize("verify", [str(TLS_CERT), False], ids=["ca-bundle", "insecure"])
def test_a_ca_bundle_or_insecure_mode_reaches_an_https_itop(verify):
    with FakeItop(tls=True) as itop, warnings.catch_warnings():
        warnings.simplefilter("error")  # urllib3's InsecureRequestWarning would reach the plugin's stderr
        assert client(itop, verify=verify).find_open_incident("t", "Demo") is None
        assert [r.operation for r in itop.requests] == ["core/get"]


def test_a_slow_server_times_out_within_the_plugins_remaining_time(fake_itop, monkeypatch):
    fake_itop.mode, fake_itop.delay = "slow", 5
    monkeypatch.setattr(deadline, "current", deadline.Deadline(1.5))  # not armed: only its clock is used
    started = time.monotonic()

    with pytest.raises(ItopError, match=r"^iTop at .* did not answer within 0\.\d+s$"):
        client(fake_itop, timeout=10).find_open_incident("t", "Demo")

    assert time.monotonic() - started < 1.0


def test_no_call_is_made_when_the_plugins_time_is_used_up(fake_itop, monkeypatch):
    monkeypatch.setattr(deadline, "current", deadline.Deadline(0.5))

    with pytest.raises(ItopError, match="no time left for iTop within the plugin's --timeout"):
        client(fake_itop).find_open_incident("t", "Demo")
    assert fake_itop.requests == []


def test_describe_shows_the_request_with_the_password_masked(fake_itop):
    described = json.loads(client(fake_itop).describe({"operation": "core/get"}))

    assert described == {"url": fake_itop.url + "/webservices/rest.php",
                         "form": {"version": "1.3", "auth_user": "rest", "auth_pwd": "********",
                                  "json_data": {"operation": "core/get"}}}


def test_the_dry_run_client_sends_nothing(fake_itop):
    dry = DryRunClient(fake_itop.url, "rest", "rest-password")

    assert dry.find_open_incident("t", "Demo") is None
    assert dry.create_incident(FIELDS, "c").ref == "I-(dry run)"
    assert fake_itop.requests == []
    assert len(dry.sent) == 2 and all("rest-password" not in line for line in dry.sent)


def test_a_message_echoing_the_password_is_masked(fake_itop):
    fake_itop.mode = "not_json"  # its body has the word "Fatal", used here as the password

    with pytest.raises(ItopError) as raised:
        ItopClient(fake_itop.url, "rest", "Fatal").find_open_incident("t", "Demo")

    assert "Fatal" not in str(raised.value) and "********" in str(raised.value)
