"""Ticketing settings: which iTop, as whom, and what an Incident of a failed backup says.

Values come from the command line first, then the environment (the password only), then
iTop's param-file keys, the very ones check-backup.php reads (``itop_backup_incident``,
``check_ticket_login``, ``check_ticket_pwd``, ``check_ticket_title``, …). Tickets are on
when an iTop URL is known. The password never needs a command line: ``check_ticket_pwd`` in a
param file, ``--itop-password-file`` or ``$CHECK_ITOP_BACKUP_ITOP_PASSWORD``.

Settings that make tickets impossible (no login, no organisation, an unreadable password
file) are not errors of the check: they are listed in ``problems`` and reported as a
"ticket failed" line when a ticket is due, so they never change the backup's verdict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace

from check_itop_backup.itop.textfile import read_text

PASSWORD_ENV = "CHECK_ITOP_BACKUP_ITOP_PASSWORD"  # noqa: S105 - a variable name, not a secret
MASK = "********"
DEFAULT_UPDATE_EVERY = "24h"
DEFAULT_HTTP_TIMEOUT_S = 10.0

# option dest -> iTop param-file key
PARAM_KEYS = {
    "itop_url": "itop_backup_incident",
    "itop_user": "check_ticket_login",
    "ticket_title": "check_ticket_title",
    "ticket_customer": "check_ticket_customer",
    "ticket_service": "check_ticket_service",
    "ticket_service_subcategory": "check_ticket_service_subcategory",
    "ticket_workgroup": "check_ticket_workgroup",
    "ticket_impacted_server": "check_ticket_impacted_server",
}


class TicketSettings(SimpleNamespace):
    """Everything the ticketing needs.

    ``url`` (iTop's root), ``user``/``password``, the Incident's ``title``, ``customer``
    (organisation name), ``caller`` (full name or e-mail), ``service``,
    ``service_subcategory``, ``workgroup`` and ``impacted_server`` (names; "" when unset),
    ``impact``/``urgency`` ("1"…), ``ticket_on`` ("critical" or "warning"), ``update_every``
    (s), ``resolve``/``dry_run`` (bool), ``api_version``, ``basic_auth``, ``verify`` (True,
    False or a CA bundle path), ``http_timeout`` (s), ``problems`` (why tickets cannot be
    sent). By keyword; a SimpleNamespace, as the records of itop/instance.py, for the probe's
    start-up.
    """

    def __repr__(self) -> str:
        return super().__repr__().replace(f"password={self.password!r}", f"password={MASK!r}")


def _password(args: object, params: Mapping[str, str],
              environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Return (password, problem)."""
    if args.itop_password_file:
        try:
            text = read_text(args.itop_password_file, limit=64 << 10)
            return text.split("\n", 1)[0].rstrip("\r"), None
        except OSError as error:
            return "", f"cannot read --itop-password-file {args.itop_password_file}: {error.strerror}"
    return environ.get(PASSWORD_ENV) or params.get("check_ticket_pwd", ""), None


def ticket_settings(args: object, params: Mapping[str, str],
                    environ: Mapping[str, str] = os.environ,
                    itop_backup_module: Mapping[str, object] | None = None) -> TicketSettings | None:
    """Return the ticket settings from parsed *args* and param-file *params*; None when tickets are off.

    *itop_backup_module* holds config-itop.php's ``itop-backup`` module settings, where iTop
    itself reads ``itop_backup_incident``: the last place an iTop URL is looked for.
    """
    values = {dest: getattr(args, dest) or params.get(key, "") for dest, key in PARAM_KEYS.items()}
    if not values["itop_url"] and itop_backup_module:
        values["itop_url"] = str(itop_backup_module.get("itop_backup_incident") or "")
    if not values["itop_url"]:
        return None
    password, password_problem = _password(args, params, environ)
    server = values["ticket_impacted_server"]
    title = values["ticket_title"] or f"Backup check failed on {server or os.uname().nodename}"
    problems = [password_problem] if password_problem else []
    for missing, what in ((values["itop_user"], "no iTop login (--itop-user or check_ticket_login)"),
                          (password or password_problem, f"no iTop password (--itop-password-file, "
                                                         f"${PASSWORD_ENV} or check_ticket_pwd)"),
                          (values["ticket_customer"],
                           "no organisation (--ticket-customer or check_ticket_customer)")):
        if not missing:
            problems.append(what)
    return TicketSettings(
        url=values["itop_url"],
        user=values["itop_user"],
        password=password,
        title=title,
        customer=values["ticket_customer"],
        caller=args.ticket_caller or "",
        service=values["ticket_service"],
        service_subcategory=values["ticket_service_subcategory"],
        workgroup=values["ticket_workgroup"],
        impacted_server=server,
        impact=args.ticket_impact,
        urgency=args.ticket_urgency,
        ticket_on=args.ticket_on,
        update_every=args.ticket_update_every,
        resolve=args.ticket_resolve,
        dry_run=args.ticket_dry_run,
        api_version=args.itop_api_version,
        basic_auth=args.itop_basic_auth,
        verify=False if args.itop_insecure else (args.itop_ca_bundle or True),
        http_timeout=DEFAULT_HTTP_TIMEOUT_S,
        problems=tuple(problems),
    )
