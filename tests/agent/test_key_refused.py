from __future__ import annotations

from django.test import override_settings

from portal.accounts.models import ApiKey, Scope
from portal.agent.config import FAIL_CLOSED
from portal.agent.nft import Names, empty_sets
from portal.agent.state import StateFile
from tests.agent.base import PortalLiveTestCase


# What the agent does once its key is refused; how soon a revocation reaches the portal's
# in-process key cache (within API_KEY_CACHE_SECONDS) is tested in test_feed_artifacts.py.
@override_settings(API_KEY_CACHE_SECONDS=0)
class KeyRefusedTestCase(PortalLiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.approve("203.0.113.5")

    def revoke_key(self) -> None:
        with self.portal():
            self.api_key.revoke()

    def test_it_keeps_the_set_and_says_so_loudly_by_default(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        nft.take()
        self.revoke_key()
        with self.assertLogs("portal.agent", "CRITICAL") as logs:
            self.assertFalse(agent.sync_once())
        self.assertIn(
            "the portal refused the agent's key (HTTP 401: Invalid or revoked API key). Keeping the 1 "
            "exemptions in force (fail-static)",
            logs.output[0],
        )
        self.assertEqual(nft.transactions, [])
        self.assertEqual(len(agent.exemptions), 1)
        status, health = agent.health()
        self.assertEqual((status, health["status"]), (503, "key_refused"))

    def test_it_empties_the_sets_when_configured_to_fail_closed(self) -> None:
        agent, nft = self.started_agent(fail_mode=FAIL_CLOSED)
        agent.sync_once()
        nft.take()
        self.revoke_key()
        with self.assertLogs("portal.agent", "CRITICAL") as logs:
            self.assertFalse(agent.sync_once())
            self.assertFalse(agent.sync_once())
        self.assertIn(
            "FAIL-CLOSED: the exemption sets are empty, port 25 is dropped for every source", logs.output[0]
        )
        self.assertEqual(nft.take(), [empty_sets(Names())])  # once, however often it retries
        self.assertEqual((agent.exemptions, agent.cursor), ({}, None))
        saved = StateFile(self.state_dir).load()
        assert saved is not None
        self.assertEqual((saved.cursor, saved.exemptions), (None, {}))  # a restart won't refill it

    def test_it_refills_the_set_from_a_snapshot_once_the_key_is_accepted_again(self) -> None:
        agent, nft = self.started_agent(fail_mode=FAIL_CLOSED)
        agent.sync_once()
        self.revoke_key()
        with self.assertLogs("portal.agent", "CRITICAL"):
            agent.sync_once()
        with self.portal():
            ApiKey.objects.update(revoked_at=None)
        with self.assertLogs("portal.agent", "INFO") as logs:
            self.assertTrue(agent.sync_once())
        self.assertIn("the portal accepts the agent's key again", "\n".join(logs.output))
        self.assertIn("add element inet egress_port25 exempt4 { 203.0.113.5 }", nft.last)
        self.assertEqual(agent.health()[1]["status"], "ok")

    def test_a_key_of_another_scope_is_refused_with_403(self) -> None:
        with self.portal():
            _, provisioning_key = ApiKey.issue(
                name="billing", scope=Scope.PROVISIONING, tenant=None, created_by=None
            )
        agent, nft = self.started_agent(key=provisioning_key, fail_mode=FAIL_CLOSED)
        with self.assertLogs("portal.agent", "CRITICAL") as logs:
            self.assertFalse(agent.sync_once())
        self.assertIn("(HTTP 403: This operation needs an enforcement API key)", logs.output[0])
        self.assertEqual(nft.last, empty_sets(Names()))
