from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from portal.agent.config import Address
from portal.agent.server import AgentServer
from portal.agent.sync import Agent
from tests.agent.base import PortalLiveTestCase


class HealthTestCase(PortalLiveTestCase):
    def serve(self, agent: Agent) -> str:
        server = AgentServer(Address("127.0.0.1", 0), agent, health=True, webhooks=None)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def get(self, url: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.load(error)

    def test_it_reports_the_age_of_the_last_successful_sync(self) -> None:
        self.approve("203.0.113.5", "2001:db8:a::/64")
        agent, _ = self.started_agent()
        base = self.serve(agent)
        status, body = self.get(base + "/healthz")
        self.assertEqual((status, body["status"], body["last_sync_age_seconds"]), (503, "starting", None))

        agent.sync_once()
        status, body = self.get(base + "/healthz")
        self.assertEqual((status, body["status"], body["cursor"], body["exemptions"]), (200, "ok", 2, 2))
        self.assertLess(body["last_sync_age_seconds"], 5)
        self.assertEqual(body["set_elements"], {"ipv4": 1, "ipv6": 1})
        self.assertEqual((body["fail_mode"], body["last_error"]), ("fail-static", None))

    def test_it_turns_503_when_the_last_sync_is_older_than_allowed(self) -> None:
        agent, _ = self.started_agent(stale_seconds=0.2)
        base = self.serve(agent)
        agent.sync_once()
        self.assertEqual(self.get(base + "/healthz")[0], 200)
        time.sleep(0.3)
        status, body = self.get(base + "/healthz")
        self.assertEqual((status, body["status"]), (503, "stale"))
        self.assertGreater(body["last_sync_age_seconds"], 0.2)

    def test_it_serves_nothing_else(self) -> None:
        agent, _ = self.started_agent()
        base = self.serve(agent)
        self.assertEqual(self.get(base + "/")[0], 404)
        request = urllib.request.Request(base + "/webhook", data=b"{}", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        self.assertEqual(caught.exception.code, 404)
        caught.exception.close()
