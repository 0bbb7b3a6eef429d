"""A dead-man's-switch service for the tests: a real HTTP server on 127.0.0.1 that records every
request (method, path, query, body) and answers 200, or a status of the test's choosing, or
holds each request until the test releases it (a server slower than any ping timeout)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit


class Ping(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    body: str


class PingServer:
    """``with PingServer() as server``: ``server.url`` is its base URL, ``server.pings`` what it got.

    *statuses* are answered in turn (then 200); with ``hold=True`` no request is answered before
    ``release()`` (called on leaving the block)."""

    def __init__(self, statuses: tuple[int, ...] = (), hold: bool = False) -> None:
        self.pings: list[Ping] = []
        self.statuses = list(statuses)
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                parts = urlsplit(self.path)
                owner.pings.append(Ping(self.command, parts.path, dict(parse_qsl(parts.query)), body))
                owner.released.wait()
                status = owner.statuses.pop(0) if owner.statuses else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                except OSError:  # a held request: the client gave up long ago
                    self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802 (http.server's names)
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> PingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens (a service that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/ping/down"
