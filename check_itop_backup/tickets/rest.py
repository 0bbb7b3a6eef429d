"""A small client for iTop's REST/JSON API (``<url>/webservices/rest.php``), for Incidents.

iTop answers HTTP 200 for almost every outcome, errors included: only the JSON ``code`` says
whether a call worked (0), and ``"objects": null`` means that nothing matched. This module
turns every way a call can fail (a refused connection, a TLS error, a slow server, an HTML
login or maintenance page, an HTTP 5xx, a body that is not JSON, a ``code`` other than 0)
into one ``ItopError`` whose message is a single line a person can act on.

The request payloads are built by pure functions (``create_request``, ``find_open_request``,
``public_log_request``, ``resolve_request``) so that a dry run can show exactly what would
be sent (``ItopClient.describe``, password masked). ``requests`` is imported here only: the
probe imports this module when it has ticket work to do, never on its fast path. Every HTTP
timeout is cut to fit in what is left of the plugin's ``--timeout`` (``deadline.current``).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Union

import requests
from urllib3.exceptions import InsecureRequestWarning

from check_itop_backup import deadline

DEFAULT_VERSION = "1.3"
DEFAULT_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
# Seconds kept back from the plugin's --timeout so the verdict can still be printed.
RESERVE_S = 1.0
MASK = "********"
ENDPOINT = "/webservices/rest.php"

# Every other Incident status (new, assigned, pending, escalated_tto, escalated_ttr) is open.
CLOSED_STATUSES = ("resolved", "closed")

CODE_HINTS = {
    1: "unauthorized: check the login, the password and the user's profiles"
       " (REST Services User and Service Desk Agent)",
    2: "the request had no version",
    3: "the request had no json_data",
    4: "iTop could not parse the request's JSON",
    10: "this iTop does not offer that REST version (see --itop-api-version)",
    11: "this iTop does not know that operation",
    100: "iTop refused the data",
}

Verify = Union[bool, str]


class ItopError(Exception):
    """A REST call failed; ``str()`` is one line saying why. ``code`` and ``itop_message``
    (without its "Error: " prefix) are iTop's, when it answered with a result code."""

    def __init__(self, message: str, code: int | None = None, itop_message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.itop_message = itop_message


@dataclass(frozen=True)
class Incident:
    """An Incident as iTop returned it: its key (id), ref (``I-000123``) and status."""

    key: str
    ref: str
    status: str

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES


def oql_quote(value: str) -> str:
    """Return *value* as an OQL string literal.

    >>> print(oql_quote("O'Brien \\\\ Co"))
    'O\\'Brien \\\\ Co'
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_request(fields: dict[str, Any], comment: str) -> dict[str, Any]:
    """Return the ``core/create`` payload for an Incident with *fields*."""
    return {
        "operation": "core/create",
        "comment": comment,
        "class": "Incident",
        "output_fields": "id,ref,status",
        "fields": fields,
    }


def find_open_request(title: str, org: str) -> dict[str, Any]:
    """Return the ``core/get`` payload for open Incidents with this exact title and organisation."""
    closed = ",".join(oql_quote(status) for status in CLOSED_STATUSES)
    return {
        "operation": "core/get",
        "class": "Incident",
        "key": f"SELECT Incident WHERE title = {oql_quote(title)} AND org_name = {oql_quote(org)}"
               f" AND status NOT IN ({closed})",
        "output_fields": "id,ref,status",
    }


def public_log_request(key: str, message: str, comment: str) -> dict[str, Any]:
    """Return the ``core/update`` payload that appends *message* (plain text) to the public log."""
    return {
        "operation": "core/update",
        "comment": comment,
        "class": "Incident",
        "key": key,
        "output_fields": "id,ref,status",
        "fields": {"public_log": {"add_item": {"message": message, "format": "text"}}},
    }


def resolve_request(key: str, solution_html: str, comment: str,
                    resolution_code: str = "other") -> dict[str, Any]:
    """Return the ``core/apply_stimulus`` payload that resolves the Incident *key*.

    ``ev_autoresolve`` is used because it applies from new, assigned, pending and the
    escalated states, while ``ev_resolve`` is refused (code 100) while the ticket is ``new``.
    """
    return {
        "operation": "core/apply_stimulus",
        "comment": comment,
        "class": "Incident",
        "key": key,
        "stimulus": "ev_autoresolve",
        "output_fields": "id,ref,status",
        "fields": {"resolution_code": resolution_code, "solution": solution_html},
    }


class ItopClient:
    """Talks to one iTop as one user. Methods raise ``ItopError`` and nothing else."""

    def __init__(self, url: str, user: str, password: str, *, version: str = DEFAULT_VERSION,
                 basic_auth: bool = False, verify: Verify = True,
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """*url* is iTop's root URL; *verify* is True, False (insecure) or a CA bundle path."""
        self.url = url.rstrip("/")
        self.endpoint = self.url + ENDPOINT
        self.user = user
        self._password = password
        self.version = version
        self.basic_auth = basic_auth
        self.verify = verify
        self.timeout = timeout
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"ItopClient({self.url!r}, user={self.user!r})"

    def form(self, payload: dict[str, Any]) -> dict[str, str]:
        """Return the form fields that carry *payload* (the password in clear: do not print)."""
        fields = {"version": self.version}
        if self.basic_auth:
            fields["login_mode"] = "basic"
        else:
            fields.update(auth_user=self.user, auth_pwd=self._password)
        fields["json_data"] = json.dumps(payload)
        return fields

    def describe(self, payload: dict[str, Any]) -> str:
        """Return what ``call(payload)`` would POST, as JSON, with the password masked."""
        fields = self.form(payload)
        if "auth_pwd" in fields:
            fields["auth_pwd"] = MASK
        else:
            fields["authorization"] = f"Basic {self.user}:{MASK}"
        fields["json_data"] = payload
        return json.dumps({"url": self.endpoint, "form": fields}, sort_keys=True)

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST *payload* and return iTop's answer, which has ``code`` 0.

        Raise ItopError for anything else (transport, HTTP, body or a non-zero code).
        """
        timeout = self._timeout()
        try:
            with warnings.catch_warnings():
                if self.verify is False:  # asked for explicitly: no warning on a plugin's stderr
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                response = self.session.post(
                    self.endpoint, data=self.form(payload), verify=self.verify,
                    timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout),
                    auth=(self.user, self._password) if self.basic_auth else None, allow_redirects=False)
        except requests.exceptions.SSLError as error:
            raise ItopError(f"TLS error with iTop at {self.url}: {self._reason(error)}") from None
        except requests.exceptions.Timeout:
            raise ItopError(f"iTop at {self.url} did not answer within {timeout:g}s") from None
        except requests.exceptions.ConnectionError as error:
            raise ItopError(f"cannot connect to iTop at {self.url}: {self._reason(error)}") from None
        except requests.exceptions.RequestException as error:
            raise ItopError(f"request to iTop at {self.url} failed: {self._reason(error)}") from None
        return self._answer(response)

    def create_incident(self, fields: dict[str, Any], comment: str) -> Incident:
        """Create an Incident with *fields* (foreign keys as OQL) and return it."""
        return self._single(self.call(create_request(fields, comment)))

    def find_open_incident(self, title: str, org: str) -> Incident | None:
        """Return the oldest open Incident with this exact title and organisation, or None."""
        found = _incidents(self.call(find_open_request(title, org)))
        return min(found, key=lambda incident: int(incident.key)) if found else None

    def add_public_log(self, key: str, message: str, comment: str) -> Incident:
        """Append *message* to the public log of Incident *key*; return the Incident."""
        return self._single(self.call(public_log_request(key, message, comment)))

    def resolve(self, key: str, solution_html: str, comment: str) -> Incident:
        """Resolve Incident *key* (from any open status) with *solution_html*; return it."""
        return self._single(self.call(resolve_request(key, solution_html, comment)))

    def _timeout(self) -> float:
        budget = deadline.current.remaining() - RESERVE_S
        if budget <= 0.1:
            raise ItopError("no time left for iTop within the plugin's --timeout")
        return min(self.timeout, budget)

    def _answer(self, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        text = response.text
        body = _json_or_none(text)
        if status != 200:
            detail = f": {self._mask(str(body['message']))}" if isinstance(body, dict) and "message" in body \
                else ""
            if status == 503:
                raise ItopError(f"iTop at {self.url} is in maintenance (HTTP 503{detail})")
            raise ItopError(f"iTop at {self.url} answered HTTP {status} {response.reason or ''}".rstrip()
                            + detail)
        if body is None:
            if re.search(r"<\s*(html|!doctype)", text[:1000], re.IGNORECASE):
                raise ItopError(f"iTop at {self.url} answered an HTML page{_html_title(text)} instead of"
                                " JSON: check the URL and the login mode")
            raise ItopError(f"iTop at {self.url} answered something that is not JSON: "
                            f"{self._mask(_shorten(text)) or '(empty body)'}")
        if not isinstance(body, dict) or not isinstance(body.get("code"), int):
            raise ItopError(f"iTop at {self.url} answered JSON without a result code: "
                            f"{self._mask(_shorten(text))}")
        code = body["code"]
        if code != 0:
            message = self._mask(_shorten(re.sub(r"^Error:\s*", "", str(body.get("message") or ""))))
            hint = CODE_HINTS.get(code)
            raise ItopError(f"iTop said code {code} {message}" + (f" ({hint})" if hint else ""), code,
                            message)
        return body

    def _single(self, body: dict[str, Any]) -> Incident:
        found = _incidents(body)
        if len(found) != 1:
            raise ItopError(f"iTop answered {len(found)} objects where one was expected")
        return found[0]

    def _reason(self, error: BaseException) -> str:
        """The innermost useful words of a requests exception, on one line."""
        text = str(error)
        for pattern in (r"\[SSL: [A-Z_]+\] ([^(]+?)(?: \(_ssl|'|\)|$)", r"\[Errno -?\d+\] ([^'\")]+)"):
            match = re.search(pattern, text)
            if match:
                return match.group(1).strip()
        return self._mask(_shorten(text))

    def _mask(self, text: str) -> str:
        return text.replace(self._password, MASK) if self._password else text


class DryRunClient(ItopClient):
    """Sends nothing: keeps in ``sent`` what it would send (password masked) and answers as if
    iTop had no open Incident and accepted every change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(self.describe(payload))
        if payload["operation"] == "core/get":
            return {"code": 0, "message": "Found: 0", "objects": None}
        fields = {"id": "0", "ref": "I-(dry run)", "status": "new"}
        return {"code": 0, "message": None, "objects": {"Incident::0": {"key": "0", "fields": fields}}}


def _incidents(body: dict[str, Any]) -> list[Incident]:
    objects = body.get("objects") or {}
    if not isinstance(objects, dict) or not all(isinstance(item, dict) for item in objects.values()):
        raise ItopError(f"iTop answered objects in an unexpected shape: {_shorten(json.dumps(objects))}")
    incidents = []
    for item in objects.values():
        fields = item.get("fields") if isinstance(item.get("fields"), dict) else {}
        incidents.append(Incident(str(item.get("key", fields.get("id", ""))), str(fields.get("ref", "")),
                                  str(fields.get("status", ""))))
    return incidents


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _html_title(text: str) -> str:
    match = re.search(r"<title[^>]*>([^<]*)</title>", text, re.IGNORECASE)
    return f" ({' '.join(match.group(1).split())})" if match and match.group(1).strip() else ""


def _shorten(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"
