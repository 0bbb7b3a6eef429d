"""The ticket policy: one iTop Incident per failure episode, followed up, never masking the verdict.

Given the check's verdict, ``follow_up()`` decides and acts:

* failing (CRITICAL; WARNING too with ``ticket_on="warning"``) and no ticket open: search iTop
  for an open Incident with the same title and organisation (a lost history must not
  duplicate tickets), adopt it with a log entry, or create a new one; remember it in the
  history;
* failing with a ticket open: add at most one public-log entry per ``update_every``; when
  someone resolved or closed it in iTop meanwhile, a new episode begins;
* not failing with a ticket open: log that the backup recovered and, with ``resolve``,
  resolve the Incident; UNKNOWN never counts as a recovery.

It returns the lines for the plugin's long output ("opened I-000123", "updated I-000123",
"ticket failed: iTop said code 1 Invalid login"). Every failure becomes such a line, never an
exception (borgmatic's rule: a notifier never masks the failure it reports). rest.py
(and so ``requests``) is imported only when iTop has to be called.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from check_itop_backup import deadline
from check_itop_backup.deadline import StageTimeoutError
from check_itop_backup.history import History, HistoryError, TicketRecord
from check_itop_backup.tickets.settings import MASK, TicketSettings
from check_itop_backup.units import format_duration

STAGE = "opening an iTop ticket"
COMMENT = "check_itop_backup"
MAX_DETAIL_LINES = 30
MAX_LINE_CHARS = 500
# Incident fields a ticket can do without; iTop names the one it cannot resolve first in its message.
OPTIONAL_LINKS = ("caller_id", "service_id", "servicesubcategory_id", "team_id", "functionalcis_list",
                  "functionalci_id")


@dataclass(frozen=True)
class Verdict:
    """What the check concluded: state (ok/warning/critical/unknown), status text, long output."""

    state: str
    summary: str
    details: tuple[str, ...] = ()


def follow_up(settings: TicketSettings, history: History, series: str, verdict: Verdict,
              now: float) -> list[str]:
    """Open, update or close the Incident of *series* as *verdict* requires; return what was done.

    *now* is the check's clock (epoch seconds). Never raises: every failure (iTop, network,
    history, timeout) is returned as a line starting with "ticket failed:".
    """
    try:
        with deadline.current.stage(STAGE):
            return _Episode(settings, history, series, verdict, now).run()
    except Exception as error:  # noqa: BLE001 - ticketing must never change the verdict
        return [f"ticket failed: {_describe(error, settings.password)}"]


def check_action(settings: TicketSettings) -> Callable[[Any], list[str]]:
    """Return the follow-up action for ``cli.ItopBackupCheck``: it reads the finished check's
    state, status text and long output, and the resource's history, series and clock."""
    def itop_ticket(check: Any) -> list[str]:
        resource = check.resources[0]
        verdict = Verdict(str(check.state), check.summary_str, tuple(check.verbose_str or ()))
        return follow_up(settings, resource.history, resource.series, verdict,
                         resource.settings.now.timestamp())

    return itop_ticket


def incident_fields(settings: TicketSettings, verdict: Verdict, series: str, now: float) -> dict[str, Any]:
    """Return the ``fields`` of a new Incident: foreign keys as OQL, the description as HTML."""
    from check_itop_backup.tickets.rest import oql_quote

    def by_name(class_name: str, name: str) -> str:
        return f"SELECT {class_name} WHERE name = {oql_quote(name)}"

    fields: dict[str, Any] = {
        "org_id": by_name("Organization", settings.customer),
        "title": settings.title,
        "description": _description(settings, verdict, series, now),
        "impact": settings.impact,
        "urgency": settings.urgency,
        "origin": "monitoring",
    }
    if settings.caller:
        attribute = "email" if "@" in settings.caller else "friendlyname"
        fields["caller_id"] = f"SELECT Person WHERE {attribute} = {oql_quote(settings.caller)}"
    if settings.service:
        fields["service_id"] = by_name("Service", settings.service)
    if settings.service_subcategory:
        subcategory = by_name("ServiceSubcategory", settings.service_subcategory)
        if settings.service:
            subcategory = ("SELECT ServiceSubcategory AS sc JOIN Service AS s ON sc.service_id = s.id"
                           f" WHERE sc.name = {oql_quote(settings.service_subcategory)}"
                           f" AND s.name = {oql_quote(settings.service)}")
        fields["servicesubcategory_id"] = subcategory
    if settings.workgroup:
        fields["team_id"] = by_name("Team", settings.workgroup)
    if settings.impacted_server:
        fields["functionalcis_list"] = [{"functionalci_id": by_name("FunctionalCI", settings.impacted_server),
                                         "impact_code": "manual"}]
    return fields


class _Episode:
    """One run of the policy against one history and, when needed, one iTop."""

    def __init__(self, settings: TicketSettings, history: History, series: str, verdict: Verdict,
                 now: float) -> None:
        self.settings = settings
        self.history = history
        self.series = series
        self.verdict = verdict
        self.now = now
        self._client = None

    @property
    def failing(self) -> bool:
        return self.verdict.state == "critical" or (
            self.settings.ticket_on == "warning" and self.verdict.state == "warning")

    def run(self) -> list[str]:
        ticket = self.history.open_ticket(self.series)
        if self.failing:
            return self.follow(ticket) if ticket else self.open()
        if ticket and self.verdict.state != "unknown":
            return self.recover(ticket)
        return []

    @property
    def client(self) -> Any:
        """The iTop client (imported and built on first use); raise when settings are incomplete."""
        if self.settings.problems:
            raise _TicketConfigError("; ".join(self.settings.problems))
        if self._client is None:
            from check_itop_backup.tickets.rest import DryRunClient, ItopClient

            settings = self.settings
            client_class = DryRunClient if settings.dry_run else ItopClient
            self._client = client_class(settings.url, settings.user, settings.password,
                                        version=settings.api_version, basic_auth=settings.basic_auth,
                                        verify=settings.verify, timeout=settings.http_timeout)
        return self._client

    def open(self) -> list[str]:
        from check_itop_backup.tickets.rest import ItopError

        settings = self.settings
        found = self.client.find_open_incident(settings.title, settings.customer)
        if found:
            self.client.add_public_log(found.key, self._still_failing(), COMMENT)
            self._remember(found, last_update_at=self.now)
            return self._lines(f"updated {found.ref} (found open in iTop)")
        fields = incident_fields(settings, self.verdict, self.series, self.now)
        try:
            created, done = self.client.create_incident(fields, COMMENT), ""
        except ItopError as error:
            # As iTop's own SOAP call does, a caller, service, team or CI that iTop cannot find
            # must not cost the service desk its ticket: open it without them, and say so.
            if error.code != 100 or error.itop_message.split(":", 1)[0] not in OPTIONAL_LINKS:
                raise
            fields = {name: value for name, value in fields.items() if name not in OPTIONAL_LINKS}
            fields["description"] += f"<p>{html.escape(f'Not linked: iTop said {error.itop_message}')}</p>"
            created, done = self.client.create_incident(fields, COMMENT), f" without its links ({error})"
        self._remember(created, last_update_at=None)
        return self._lines(f"opened {created.ref}{done}")

    def follow(self, ticket: TicketRecord) -> list[str]:
        last = ticket.last_update_at or ticket.opened_at
        if self.now - last < self.settings.update_every:
            wait = format_duration(last + self.settings.update_every - self.now)
            return [f"ticket {ticket.ref} open; next update in {wait}"]
        incident = self.client.add_public_log(ticket.itop_key, self._still_failing(), COMMENT)
        if incident.is_open:
            self._write(self.history.ticket_updated, ticket.id, self.now)
            return self._lines(f"updated {ticket.ref}")
        self._write(self.history.close_ticket, ticket.id, self.now, f"{incident.status} in iTop")
        return [f"{ticket.ref} is {incident.status} in iTop"] + self.open()

    def recover(self, ticket: TicketRecord) -> list[str]:
        message = _scrub(f"Recovered at {_when(self.now)}: the backup check is "
                         f"{self.verdict.state.upper()}: {self.verdict.summary}", self.settings.password)
        incident = self.client.add_public_log(ticket.itop_key, message, COMMENT)
        done, state = f"recovered {ticket.ref}", "recovered"
        if self.settings.resolve and incident.is_open:
            self.client.resolve(ticket.itop_key, f"<p>{html.escape(message)}</p>", COMMENT)
            done, state = f"resolved {ticket.ref}", "resolved"
        self._write(self.history.close_ticket, ticket.id, self.now, state)
        return self._lines(done)

    def _remember(self, incident: Any, last_update_at: float | None) -> None:
        self._write(self.history.remember_ticket, self.series, incident.ref, incident.key,
                    self.settings.title, self.settings.customer, self.now, last_update_at)

    def _write(self, method: Any, *args: Any) -> None:
        """Run one history write in its own transaction (nothing is written in a dry run)."""
        if self.settings.dry_run:
            return
        with self.history.transaction():
            method(*args)

    def _lines(self, done: str) -> list[str]:
        if not self.settings.dry_run:
            return [done]
        return [f"dry run: would POST {sent}" for sent in self.client.sent] + [f"dry run: {done}"]

    def _still_failing(self) -> str:
        return _scrub(f"Still {self.verdict.state.upper()} at {_when(self.now)}: {self.verdict.summary}",
                      self.settings.password)


class _TicketConfigError(Exception):
    """Ticketing is configured but cannot work (missing login, password or organisation)."""


def _description(settings: TicketSettings, verdict: Verdict, series: str, now: float) -> str:
    """The Incident's description: HTML, every piece of text escaped, the long output bounded."""
    def paragraph(*lines: str) -> str:
        return "<p>" + "<br>".join(html.escape(line[:MAX_LINE_CHARS]) for line in lines) + "</p>"

    parts = [
        paragraph(f"The iTop backup check is {verdict.state.upper()} since {_when(now)}."),
        paragraph(verdict.summary),
    ]
    if verdict.details:
        parts.append(paragraph(*verdict.details[:MAX_DETAIL_LINES]))
    parts.append(paragraph(f"Backup series: {series}", "Opened by check_itop_backup; it logs here while "
                           "the failure lasts and says when the backup recovers."))
    return _scrub("".join(parts), settings.password)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _describe(error: Exception, password: str) -> str:
    """One line for a failure: the message of the errors that explain themselves, else type and message."""
    itop_rest = sys.modules.get("check_itop_backup.tickets.rest")
    explained = (_TicketConfigError, HistoryError, StageTimeoutError)
    if itop_rest is not None:
        explained += (itop_rest.ItopError,)
    text = str(error) if isinstance(error, explained) else f"{type(error).__name__}: {error}"
    return _scrub(text, password)


def _scrub(text: str, password: str) -> str:
    """*text* without the password, in case some message echoed it."""
    return text.replace(password, MASK) if password else text
