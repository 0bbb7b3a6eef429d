"""A fake iTop 3.2 REST server for tests: a real HTTP server on 127.0.0.1, on an ephemeral port.

It answers ``POST /webservices/rest.php`` as the recorded exchanges in ``tests/data/rest/`` show
iTop does: HTTP 200 for every error, a JSON ``code`` and iTop's messages, ``"objects": null``
when nothing matched. It keeps Incidents in memory (create, get, update of the public log,
apply_stimulus with iTop's Incident lifecycle) and resolves foreign keys given as OQL or as
search objects against a few reference objects taken from the recordings (organisation
"Demo", caller Agatha Christie, …). Its OQL is the small subset the client sends:
``SELECT C [AS a] [JOIN D AS d ON …] WHERE x = 'v' AND y NOT IN ('a','b') …``.

``mode`` makes it misbehave: ``html`` (login page), ``maintenance`` (HTTP 503), ``http500``,
``not_json``, ``slow`` (sleeps ``delay`` seconds before answering); ``tls`` serves HTTPS with a
self-signed certificate (``TLS_CERT``). Every request is kept in
``requests`` (form fields, parsed json_data, headers) for the tests to assert.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

ROOT = "/itop"
# A self-signed certificate for 127.0.0.1 (valid until 2126), for the HTTPS mode; the CA bundle is the
# certificate itself.
RECORDED = Path(__file__).parent / "data" / "rest"
TLS_CERT = Path(__file__).parent / "data" / "tls" / "fake-itop.pem"
TLS_KEY = TLS_CERT.with_suffix(".key")
USERS = {"rest": "rest-password"}
USERS_WITHOUT_REST_PROFILE = {"admin": "admin-password"}
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")
OPERATIONS = ("list_operations", "core/create", "core/get", "core/update", "core/apply_stimulus")
INCIDENT_FIELDS = (
    "org_id", "caller_id", "title", "description", "impact", "urgency", "origin", "service_id",
    "servicesubcategory_id", "team_id", "agent_id", "functionalcis_list", "public_log",
    "resolution_code", "solution", "pending_reason",
)
KEY_TARGETS = {
    "org_id": "Organization", "caller_id": "Person", "service_id": "Service",
    "servicesubcategory_id": "ServiceSubcategory", "team_id": "Team", "agent_id": "Person",
    "functionalci_id": "FunctionalCI",
}
# stimulus -> (states it applies in, target state, mandatory fields)
STIMULI = {
    "ev_assign": (("new", "escalated_tto"), "assigned", ("team_id", "agent_id")),
    "ev_pending": (("assigned", "escalated_ttr"), "pending", ("pending_reason",)),
    "ev_resolve": (("assigned", "escalated_ttr"), "resolved", ("solution",)),
    "ev_autoresolve": (("new", "assigned", "pending", "escalated_tto", "escalated_ttr"), "resolved",
                       ("solution",)),
    "ev_close": (("resolved",), "closed", ()),
}
MAINTENANCE = {"code": 100, "message": "This application is currently under maintenance."}
LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>iTop login</title></head><body>"
    "<form method=\"post\"><input name=\"auth_user\"><input name=\"auth_pwd\" type=\"password\">"
    "</form></body></html>"
)


# iTop's backup.params.distrib ticket keys, naming objects this fake knows (add itop_backup_incident).
TICKET_PARAMS = {
    "check_ticket_login": "rest",
    "check_ticket_pwd": USERS["rest"],
    "check_ticket_title": "Backup check failed",
    "check_ticket_customer": "Demo",
    "check_ticket_service": "Computers and peripherals",
    "check_ticket_service_subcategory": "Repair",
    "check_ticket_workgroup": "Hardware support",
    "check_ticket_impacted_server": "source-itop.demo.com",
}


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reference_objects() -> dict[str, list[dict[str, Any]]]:
    """The objects a fresh fake iTop knows (ids and names from the recorded exchanges)."""
    return {
        "Organization": [{"id": 1, "name": "My Company/Department"}, {"id": 2, "name": "IT Department"},
                         {"id": 3, "name": "Demo"}],
        "Person": [{"id": 15, "name": "Christie", "first_name": "Agatha", "friendlyname": "Agatha Christie",
                    "email": "agatha.christie@demo.com"},
                   {"id": 7, "name": "Hugo", "first_name": "Victor", "friendlyname": "Victor Hugo",
                    "email": "victor.hugo@demo.com"}],
        "Service": [{"id": 1, "name": "Computers and peripherals"}],
        "ServiceSubcategory": [{"id": 1, "name": "Repair", "service_name": "Computers and peripherals"}],
        "Team": [{"id": 37, "name": "Helpdesk"}, {"id": 38, "name": "Hardware support"}],
        "FunctionalCI": [{"id": 9, "name": "source-itop.demo.com", "finalclass": "Server"}],
    }


class ItopAnswerError(Exception):
    """An answer with a non-zero code; ``in_operation`` errors carry ``"objects": null``."""

    def __init__(self, code: int, message: str, in_operation: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.in_operation = in_operation

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.in_operation:
            body["objects"] = None
        return body


@dataclass
class ReceivedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    json_data: Any = None

    @property
    def operation(self) -> str | None:
        return self.json_data.get("operation") if isinstance(self.json_data, dict) else None


@dataclass
class FakeItop:
    """The fake server; use it as a context manager (``with FakeItop() as itop: itop.url``)."""

    mode: str = "normal"
    delay: float = 0.0
    tls: bool = False
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=reference_objects)
    incidents: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    next_ref: int = 1

    def __enter__(self) -> FakeItop:
        fake = self

        class Handler(_Handler):
            itop = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(TLS_CERT, TLS_KEY)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """The root URL of this iTop (``/webservices/rest.php`` is below it)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}{ROOT}"

    def operations(self, name: str | None = None) -> list[ReceivedRequest]:
        """The received requests whose json_data had operation *name* (all operations when None)."""
        return [r for r in self.requests if name is None or r.operation == name]

    def add_incident(self, title: str, org: str = "Demo", status: str = "new") -> dict[str, Any]:
        """Put an Incident in iTop as if someone had created it; return it."""
        org_row = next(row for row in self.objects["Organization"] if row["name"] == org)
        return self._store({"title": title, "org_id": org_row["id"], "org_name": org, "status": status,
                            "description": "<p>created by a test</p>", "public_log": []})

    def _store(self, incident: dict[str, Any]) -> dict[str, Any]:
        key = max(self.incidents, default=0) + 1
        incident.update(id=key, ref=f"I-{self.next_ref:06d}")
        self.next_ref += 1
        self.incidents[key] = incident
        return incident

    # The REST service ------------------------------------------------------------------

    def answer(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Return the JSON body iTop would answer to these form fields."""
        try:
            version = form.get("version")
            if not version:
                raise ItopAnswerError(2, "Error: Missing parameter 'version' (e.g. '1.0')")
            user, password = basic if form.get("login_mode") == "basic" and basic else (
                form.get("auth_user"), form.get("auth_pwd"))
            if user in USERS_WITHOUT_REST_PROFILE and USERS_WITHOUT_REST_PROFILE[user] == password:
                raise ItopAnswerError(1, "Error: This user is not authorized to use the web services. (The"
                                         " profile REST Services User is required to access the REST web"
                                         " services)")
            if user not in self.users or self.users[user] != password:
                raise ItopAnswerError(1, "Error: Invalid login")
            if "json_data" not in form:
                raise ItopAnswerError(3, "Error: Missing parameter 'json_data'")
            try:
                data = json.loads(form["json_data"])
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise ItopAnswerError(4, "Error: Parameter json_data is not a valid JSON structure")
            if version not in VERSIONS:
                raise ItopAnswerError(10, f"Error: There is no service available for version '{version}'")
            operation = data.get("operation")
            if not operation:
                raise ItopAnswerError(100, "Error: Missing parameter 'operation'")
            if operation not in OPERATIONS:
                raise ItopAnswerError(11, f"Error: Unknown verb '{operation}' in version '{version}'")
            return getattr(self, "_" + operation.replace("core/", ""))(data)
        except ItopAnswerError as failure:
            return failure.body()

    def _list_operations(self, data: dict[str, Any]) -> dict[str, Any]:
        return json.loads((RECORDED / "list_operations.response.json").read_text())  # iTop 3.2's seven verbs

    def _create(self, data: dict[str, Any]) -> dict[str, Any]:
        _require(data, "comment", "class", "fields")
        _require_incident_class(data)
        fields = data["fields"]
        incident: dict[str, Any] = {"status": "new", "public_log": [], "impact": "1", "urgency": "4",
                                    "origin": "phone"}
        self._apply_fields(incident, fields)
        if incident.get("impact") not in ("1", "2", "3"):
            problem = f"Value not allowed [{incident['impact']}]"
            raise ItopAnswerError(100, _value_error("Impact", "impact", problem))
        for label, name in (("Organization", "org_id"), ("Title", "title"), ("Description", "description")):
            if not incident.get(name):
                raise ItopAnswerError(100, _value_error(label, name, "Null not allowed"))
        incident["org_name"] = self._by_id("Organization", incident["org_id"])["name"]
        return self._objects_answer([self._store(incident)], "created", data, message=None)

    def _get(self, data: dict[str, Any]) -> dict[str, Any]:
        _require(data, "class", "key")
        _require_incident_class(data)
        found = self._find_incidents(data["key"])
        return self._objects_answer(found, "", data, message=f"Found: {len(found)}")

    def _update(self, data: dict[str, Any]) -> dict[str, Any]:
        _require(data, "comment", "class", "key", "fields")
        _require_incident_class(data)
        incident = self._one_incident(data["key"])
        self._apply_fields(incident, data["fields"])
        return self._objects_answer([incident], "updated", data, message=None)

    def _apply_stimulus(self, data: dict[str, Any]) -> dict[str, Any]:
        _require(data, "comment", "class", "key", "stimulus", "fields")
        _require_incident_class(data)
        incident = self._one_incident(data["key"])
        stimulus = data["stimulus"]
        states, target, mandatory = STIMULI.get(stimulus, ((), "", ()))
        if incident["status"] not in states:
            raise ItopAnswerError(100, f"Invalid stimulus: '{stimulus}' on the object {incident['ref']}"
                                       f" in state '{incident['status']}'", in_operation=True)
        self._apply_fields(incident, data["fields"])
        missing = [name for name in mandatory if not incident.get(name)]
        if missing:
            raise ItopAnswerError(100, "Missing mandatory attribute(s) for applying the stimulus: "
                                   f"{', '.join(missing)}.", in_operation=True)
        incident["status"] = target
        return self._objects_answer([incident], "updated", data, message=None)

    def _apply_fields(self, incident: dict[str, Any], fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name not in INCIDENT_FIELDS:
                raise ItopAnswerError(100, f"Error: {name}: Unknown attribute")
            if name == "public_log":
                item = value["add_item"] if isinstance(value, dict) else {"message": value}
                incident["public_log"].append({"date": time.strftime("%Y-%m-%d %H:%M:%S"),
                                               "user_login": "rest", "message": item["message"]})
            elif name in KEY_TARGETS:
                incident[name] = self._resolve_key(name, value)["id"]
            elif name == "functionalcis_list":
                incident[name] = [self._resolve_key("functionalci_id", link.get("functionalci_id"))["id"]
                                  for link in value]
            else:
                incident[name] = value

    def _objects_answer(self, incidents: list[dict[str, Any]], object_message: str, data: dict[str, Any],
                        message: str | None) -> dict[str, Any]:
        wanted = [f.strip() for f in str(data.get("output_fields", "*")).split(",")]
        objects = {
            f"Incident::{incident['id']}": {
                "code": 0, "message": object_message, "class": "Incident", "key": str(incident["id"]),
                "fields": {name: _rest_value(value) for name, value in incident.items()
                           if "*" in wanted or name in wanted},
            }
            for incident in incidents
        }
        return {"code": 0, "message": message, "objects": objects or None}

    # Keys and OQL ----------------------------------------------------------------------

    def _find_incidents(self, key: Any) -> list[dict[str, Any]]:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return [self.incidents[int(key)]] if int(key) in self.incidents else []
        if isinstance(key, dict):
            return [row for row in self.incidents.values() if _matches(row, key)]
        class_name, conditions = _parse_oql(key)
        if class_name != "Incident":
            raise ItopAnswerError(100, f"Error: Query failed to execute: query = {key}")
        return [row for row in self.incidents.values() if all(test(row) for test in conditions)]

    def _one_incident(self, key: Any) -> dict[str, Any]:
        found = self._find_incidents(key)
        if len(found) == 1:
            return found[0]
        if isinstance(key, (int, str)) and str(key).isdigit():
            raise ItopAnswerError(100, f"Error: Invalid object Incident::{key}")
        if not found:
            raise ItopAnswerError(100, f"Error: No item found for query: {key}")
        raise ItopAnswerError(100, f"Error: Several items found ({len(found)}) for query: {key}")

    def _resolve_key(self, attribute: str, spec: Any) -> dict[str, Any]:
        target = KEY_TARGETS[attribute]
        if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
            return self._by_id(target, int(spec))
        if isinstance(spec, dict):
            rows = [row for row in self.objects[target] if _matches(row, spec)]
            described = "with criteria: " + ", ".join(f"{k}: {v}" for k, v in spec.items())
        else:
            class_name, conditions = _parse_oql(spec)
            rows = [row for row in self.objects.get(class_name, []) if all(test(row) for test in conditions)]
            described = f"for query: {spec}"
        if not rows:
            raise ItopAnswerError(100, f"Error: {attribute}: No item found {described}")
        if len(rows) > 1:
            raise ItopAnswerError(100, f"Error: {attribute}: Several items found ({len(rows)}) {described}")
        return rows[0]

    def _by_id(self, class_name: str, key: int) -> dict[str, Any]:
        for row in self.objects[class_name]:
            if row["id"] == key:
                return row
        raise ItopAnswerError(100, f"Error: Invalid object {class_name}::{key}")


_STRING = r"'((?:[^'\\]|\\.)*)'"
_SELECT = re.compile(r"^\s*SELECT\s+(\w+)(?:\s+AS\s+(\w+))?(.*?)(?:\s+WHERE\s+(.*))?$",
                     re.IGNORECASE | re.DOTALL)
_JOIN = re.compile(r"JOIN\s+(\w+)\s+AS\s+(\w+)", re.IGNORECASE)
_CONDITION = re.compile(
    rf"\s*(?:(\w+)\.)?(\w+)\s*(=|NOT\s+IN|IN)\s*(?:{_STRING}|\(\s*((?:{_STRING}\s*,?\s*)+)\))\s*(AND\s|$)",
    re.IGNORECASE)


def _parse_oql(oql: Any) -> tuple[str, list]:
    """Return (class, [row -> bool]) for the OQL subset described in the module docstring."""
    match = _SELECT.match(oql) if isinstance(oql, str) else None
    if not match:
        raise ItopAnswerError(100, f"Error: Query failed to execute: query = {oql}")
    class_name, alias, joins, where = match.groups()
    prefixes = {join_alias: join_class.lower() + "_" for join_class, join_alias in _JOIN.findall(joins)}
    prefixes[alias] = ""
    conditions, position = [], 0
    while where and position < len(where):
        condition = _CONDITION.match(where, position)
        if not condition:
            raise ItopAnswerError(100, f"Error: Query failed to execute: query = {oql}")
        position = condition.end()
        clause_alias, attribute, operator, single, listed = condition.groups()[:5]
        name = prefixes.get(clause_alias, "") + attribute
        values = [_unquote(v) for v in re.findall(_STRING, listed)] if listed else [_unquote(single)]
        negate = operator.upper().startswith("NOT")
        conditions.append(lambda row, n=name, vs=values, neg=negate: (str(row.get(n)) in vs) != neg)
    return class_name, conditions


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _matches(row: dict[str, Any], criteria: dict[str, Any]) -> bool:
    return all(str(row.get(name)) == str(value) for name, value in criteria.items())


def _require(data: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in data:
            raise ItopAnswerError(100, f"Error: Missing parameter '{name}'")


def _require_incident_class(data: dict[str, Any]) -> None:
    if data["class"] != "Incident":
        raise ItopAnswerError(100, f"Error: class: '{data['class']}' is not a valid class'")


def _value_error(label: str, name: str, problem: str) -> str:
    issue = f"Unexpected value for attribute '{label}' ({name}) : {problem}"
    return f"Error: {issue}: issues = {{0=>{issue}}}, class = Incident, id = -1"


def _rest_value(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(entry, dict) for entry in value):
        return {"entries": value}
    return str(value) if isinstance(value, int) else value


class _Handler(BaseHTTPRequestHandler):
    itop: FakeItop

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        try:
            parsed = json.loads(form["json_data"]) if "json_data" in form else None
        except ValueError:
            parsed = None
        itop = self.itop
        itop.requests.append(ReceivedRequest(self.command, self.path, dict(self.headers), form, parsed))
        if itop.mode == "slow":
            time.sleep(itop.delay)
        if itop.mode == "html":
            return self._send(200, "text/html; charset=UTF-8", LOGIN_PAGE)
        if itop.mode == "maintenance":
            return self._send(503, "application/json", json.dumps(MAINTENANCE))
        if itop.mode == "http500":
            return self._send(500, "text/html", "<html><head><title>500 Internal Server Error</title></head>")
        if itop.mode == "not_json":
            return self._send(200, "text/plain", "PHP Fatal error:  Allowed memory size exhausted")
        if self.path.split("?")[0] != ROOT + "/webservices/rest.php":
            return self._send(404, "text/html", "<html><head><title>404 Not Found</title></head></html>")
        body = itop.answer(form, _basic_credentials(self.headers.get("Authorization")))
        self._send(200, "application/json", json.dumps(body))

    def _send(self, status: int, content_type: str, text: str) -> None:
        payload = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-type", content_type)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (the slow-server tests)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password
