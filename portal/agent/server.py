"""The agent's own HTTP side: `GET /healthz` for monitoring and `POST` of the portal's webhooks.

Health and webhooks may listen on different addresses (health on loopback, webhooks where the
portal can reach them) or share one.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from portal.agent.config import Address
from portal.agent.sync import Agent
from portal.agent.webhooks import MAX_BODY, InvalidWebhook, WebhookReceiver

log = logging.getLogger("portal.agent")


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: Address, agent: Agent, *, health: bool, webhooks: WebhookReceiver | None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.agent = agent
        self.health = health
        self.webhooks = webhooks
        super().__init__((address.host, address.port), Handler)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=f"http {self.server_address}", daemon=True)
        thread.start()
        return thread


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "egress-exemption-portal-agent/1"
    sys_version = ""

    def do_GET(self) -> None:
        if not self.server.health or self.path.split("?")[0] not in ("/healthz", "/health"):
            self._answer(404, {"detail": "Not found; health is at /healthz."})
            return
        status, body = self.server.agent.health()
        self._answer(status, body)

    def do_POST(self) -> None:
        receiver = self.server.webhooks
        if receiver is None:
            self._answer(404, {"detail": "This address takes no webhooks."})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"detail": "Send a Content-Length."})
            return
        if not 0 <= length <= MAX_BODY:
            self._answer(413, {"detail": f"The body is limited to {MAX_BODY} bytes."})
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            status = receiver.receive(headers, body)
        except InvalidWebhook as exc:
            log.warning("refused a webhook from %s: %s", self.client_address[0], exc)
            self._answer(exc.status, {"detail": str(exc)})
            return
        self._answer(status, None)

    def _answer(self, status: int, body: object) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
