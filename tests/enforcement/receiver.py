"""A real HTTP receiver on loopback that records what it is sent and answers as told.

Given `secrets`, it verifies every POST with the `standardwebhooks` reference library, once per
secret (so a rotation can prove that both signatures verify), and records each failure. It also
counts, per webhook-id, how many requests are in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5; two workers sending eight at once on a loaded
    # machine overflowed it and a refused connection counted as a failed attempt. Real
    # receivers (nginx: 511) queue far more.
    request_queue_size = 128


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    path: str = "/hooks"
    peer: str = ""
    peer_port: int = 0  # one per connection: tells a kept-alive connection from new ones
    at: float = 0.0  # time.time() when the request line arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Status codes to answer with, in order; when empty, 200. Entries may be (status, headers).
    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    # Every POST must verify with each of these (whsec_…); failures are recorded, not raised.
    secrets: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def posts(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "POST"]

    def busy(self) -> int:
        with self.lock:
            return sum(self.in_flight.values())

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` POSTs have arrived (not necessarily been answered)."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.posts()) >= count, timeout)

    def _verify(self, message: Received) -> None:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(message.body, message.headers)
            except WebhookVerificationError as exc:
                with self.lock:
                    self.failures.append(f"{message.webhook_id} with {secret[:10]}…: {exc}")


@contextmanager
def running_receiver(*, keep_alive: bool = False) -> Iterator[Receiver]:
    """HTTP/1.0 (a connection per request) unless `keep_alive`: HTTP/1.1, connections kept open."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:
            arrived = time.time()
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            message = Received(
                {k.lower(): v for k, v in self.headers.items()},
                body,
                method="POST",
                path=self.path,
                peer=self.client_address[0],
                peer_port=self.client_address[1],
                at=arrived,
            )
            receiver._verify(message)
            with receiver.lock:
                receiver.received.append(message)
                receiver.in_flight[message.webhook_id] += 1
                receiver.max_in_flight[message.webhook_id] = max(
                    receiver.max_in_flight[message.webhook_id], receiver.in_flight[message.webhook_id]
                )
                answer = receiver.script.pop(0) if receiver.script else 200
            with receiver.changed:
                receiver.changed.notify_all()
            try:
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                self._answer(answer)
            finally:
                with receiver.lock:
                    receiver.in_flight[message.webhook_id] -= 1
                receiver.arrived.set()

        def do_GET(self) -> None:
            with receiver.lock:
                receiver.received.append(
                    Received(dict(self.headers.items()), b"", method="GET", path=self.path, at=time.time())
                )
            self._answer(200)

        def _answer(self, answer: int | tuple[int, dict[str, str]]) -> None:
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up (timeout) or was killed: nothing to answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
