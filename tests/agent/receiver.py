"""A small stand-in for the portal's telemetry endpoint (built elsewhere), with just enough of the
feeds for an agent to start: it records every POST and answers what the test scripts."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.agent import netns

PATH = "/api/v1/telemetry/smtp"


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


def key(body: dict[str, Any]) -> tuple[str, int]:
    return body["agent"], body["sequence"]


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str, exemptions: tuple[str, ...] = ()) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.key = key
        self.exemptions = exemptions
        self.received: list[Received] = []
        self.script: list[Answer] = []  # answers to give first, in order; then 202
        self.sequences: set[tuple[str, int]] = set()  # (agent, sequence) taken
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def totals(self) -> dict[str, dict[str, int]]:
        """Per address, the sum of each count over the reports taken (each sequence once)."""
        totals: dict[str, dict[str, int]] = {}
        with self.lock:
            taken = {key(r.body): r.body for r in self.received if key(r.body) in self.sequences}
        for body in taken.values():
            for entry in body["counts"]:
                mine = totals.setdefault(entry["address"], {"blocked": 0, "accepted": 0, "observed": 0})
                for name in mine:
                    mine[name] += entry.get(name, 0)
        return totals


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/feeds/exemptions.json"):
            exemptions = [
                {"id": f"e{i}", "block": block, "state": "active"}
                for i, block in enumerate(self.server.exemptions)
            ]
            self._answer(200, {"cursor": 1, "count": len(exemptions), "exemptions": exemptions})
        elif self.path.startswith("/api/v1/feeds/changes"):
            self._answer(200, {"changes": [], "cursor": 1, "latest": 1, "has_more": False, "reset": False})
        else:
            self._answer(404, {"detail": "Not found."})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != PATH:
            self._answer(404, {"detail": "Not found."})
            return
        if self.headers.get("Authorization") != f"Bearer {self.server.key}":
            self._answer(401, {"detail": "Invalid key."})
            return
        body = json.loads(gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw)
        with self.server.lock:
            self.server.received.append(Received(dict(self.headers.items()), body))
            if self.server.script:
                answer = self.server.script.pop(0)
                self._answer(answer.status, answer.body or {"detail": "scripted"}, answer.headers)
                return
            duplicate = key(body) in self.server.sequences
            self.server.sequences.add(key(body))
        status = 200 if duplicate else 202
        self._answer(
            status, {"sequence": body["sequence"], "duplicate": duplicate, "addresses": len(body["counts"])}
        )

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def receiving(
    key: str, *, exemptions: tuple[str, ...] = (), namespace: str | None = None
) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (of `namespace`, if given), served from a thread until the end."""
    with netns.entered(namespace) if namespace else nullcontext():
        server = Receiver(key, exemptions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
