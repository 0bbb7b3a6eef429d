"""A backup run's pings to a dead-man's-switch service (``itop-backup run --ping-url URL``).

The service alerts when the pings stop or say failure: a backup that never ran (machine off,
timer disabled) is caught there, which no check on the machine can do. Healthchecks' protocol
(hc-ping.com and its self-hosted server): ``URL/start`` when the run begins, ``URL`` on success,
``URL/<exit status>`` on failure, the last 10 kB of the run's log as the body, and ``rid=<uuid>``
on each so that overlapping runs are told apart. Two other services are spoken to in their own
terms, known from the URL: an Uptime Kuma push URL (``…/api/push/<token>``: ``status=up`` or
``down`` with ``msg`` and ``ping``, no start) and Cronitor (``cronitor.link``: ``state=run``,
``complete`` or ``fail`` with ``series``, ``message`` and ``status_code``).

A ping never changes the run: each attempt has a short timeout, a ping is tried at most
``ATTEMPTS`` times (again only after a connection problem, a timeout or a 5xx/429 answer), and
what failed is kept in ``failures`` for one warning line. Messages name the service's host only:
the rest of a ping URL is its secret.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ENV_VAR = "ITOP_BACKUP_PING_URL"
PARAM_KEY = "ping_url"
BODY_LIMIT = 10_000  # bytes of log sent with a ping: the run's last lines
DEFAULT_TIMEOUT_S = 10.0
ATTEMPTS = 3
BACKOFF_S = 0.5  # before the second attempt; doubled before the third
KUMA_MESSAGE_LIMIT = 250  # Uptime Kuma shows one short line
CRONITOR_MESSAGE_LIMIT = 2000  # Cronitor's limit for message


class LogTail(logging.Handler):
    """Keep the last ``BODY_LIMIT`` bytes of the run's log lines, for the ping's body."""

    def __init__(self, limit: int = BODY_LIMIT) -> None:
        super().__init__(logging.INFO)
        self.limit = limit
        self.lines: deque[str] = deque()
        self.size = 0
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.add(self.format(record))

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line.encode("utf-8")) + 1
        while self.size > self.limit and len(self.lines) > 1:
            self.size -= len(self.lines.popleft().encode("utf-8")) + 1

    def text(self) -> str:
        """The lines kept, at most ``limit`` bytes (a single longer line keeps its end)."""
        data = "".join(line + "\n" for line in self.lines).encode("utf-8")
        return data[-self.limit:].decode("utf-8", "ignore")


def protocol_of(url: str) -> str:
    """``uptime-kuma``, ``cronitor`` or ``healthchecks`` (any other URL), from the URL.

    >>> protocol_of("https://kuma.example.com/api/push/Ab12?status=up&msg=OK&ping=")
    'uptime-kuma'
    >>> protocol_of("https://cronitor.link/p/KEY/itop-backup"), protocol_of("https://hc-ping.com/5f3e")
    ('cronitor', 'healthchecks')
    """
    parts = urlsplit(url)
    if "/api/push/" in parts.path:
        return "uptime-kuma"
    if (parts.hostname or "").endswith("cronitor.link"):
        return "cronitor"
    return "healthchecks"


def check_url(url: str) -> str:
    """Return *url*; raise ValueError unless it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the ping URL must be an http:// or https:// URL, not {url[:40]!r}")
    return url


class Pinger:
    """The pings of one run to *url*, each attempt given *timeout* seconds."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = check_url(url)
        self.protocol = protocol_of(url)
        self.timeout = timeout
        self.run_id = str(uuid.uuid4())
        self.started = time.monotonic()
        self.failures: list[str] = []

    @property
    def host(self) -> str:
        """The service's host and port: what messages may show of the URL."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    def start(self) -> None:
        """Say the run has begun (Uptime Kuma has no such ping)."""
        self.started = time.monotonic()
        if self.protocol == "healthchecks":
            self._send("start", self._url("/start", rid=self.run_id), None)
        elif self.protocol == "cronitor":
            self._send("start", self._url("", state="run", series=self.run_id), None)

    def finish(self, status: int, log: str) -> None:
        """Say how the run ended: *status* is its exit status, *log* the body (cut to its end)."""
        event = "success" if status == 0 else "failure"
        body = log.encode("utf-8")[-BODY_LIMIT:]
        if self.protocol == "healthchecks":
            self._send(event, self._url("" if status == 0 else f"/{status}", rid=self.run_id), body)
            return
        lines = [line for line in log.splitlines() if line.strip()] or [event]
        if self.protocol == "uptime-kuma":
            milliseconds = int((time.monotonic() - self.started) * 1000)
            self._send(event, self._url("", status="up" if status == 0 else "down",
                                        msg=lines[-1][:KUMA_MESSAGE_LIMIT], ping=str(milliseconds)), None)
            return
        fields = dict(state="complete" if status == 0 else "fail", series=self.run_id,
                      message="\n".join(lines)[-CRONITOR_MESSAGE_LIMIT:], status_code=str(status))
        self._send(event, self._url("", **fields), None)

    def warning(self) -> str | None:
        """One line saying which pings failed and why, or None."""
        if not self.failures:
            return None
        return f"ping to {self.host} failed ({'; '.join(self.failures)}); the run's result is unchanged"

    def _url(self, suffix: str, **fields: str) -> str:
        """The URL with *suffix* added to its path and *fields* set in its query."""
        parts = urlsplit(self.url)
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
                 if key not in fields]
        path = parts.path.rstrip("/") + suffix if suffix else parts.path
        return urlunsplit(parts._replace(path=path, query=urlencode(query + list(fields.items()))))

    def _send(self, event: str, url: str, body: bytes | None) -> None:
        import requests

        problem, attempts = "", 0
        while attempts < ATTEMPTS:
            if attempts:
                time.sleep(BACKOFF_S * 2 ** (attempts - 1))
            attempts += 1
            try:
                if body is None:
                    answer = requests.get(url, timeout=self.timeout)
                else:
                    answer = requests.post(url, data=body, timeout=self.timeout,
                                           headers={"Content-Type": "text/plain; charset=utf-8"})
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g}s"
                continue
            except requests.RequestException as error:
                problem = f"cannot connect: {_reason(error)}"
                continue
            if answer.status_code < 400:
                return
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the service refused this ping: asking again changes nothing
        self.failures.append(f"{event}: {problem}" + (f" ({attempts} attempts)" if attempts > 1 else ""))


def _reason(error: Exception) -> str:
    """The root cause of a requests error without the URL it carries (the URL is a secret)."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(error).__name__
