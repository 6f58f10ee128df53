from __future__ import annotations

import ipaddress
import socket

from portal.agent.client import PortalClient
from portal.agent.state import SavedState, StateFile
from portal.enforcement.models import FeedChange
from tests.agent.base import PortalLiveTestCase


def dead_url() -> str:
    """A URL where nothing listens: the portal has gone away."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class SnapshotAndChangesTestCase(PortalLiveTestCase):
    def test_it_loads_the_active_set_at_start(self) -> None:
        self.approve("203.0.113.5", "2001:db8:a::/64")
        (suspended,) = self.approve("203.0.113.6")
        self.move(suspended, "exemption.suspended")
        agent, nft = self.started_agent()
        self.assertIn("add table inet egress_port25", nft.last)  # start makes sure the table exists
        with self.assertLogs("portal.agent", "INFO") as logs:
            self.assertTrue(agent.sync_once())
        self.assertEqual(agent.cursor, 4)
        self.assertIn("add element inet egress_port25 exempt4 { 203.0.113.5 }\n", nft.last)
        self.assertIn("add element inet egress_port25 exempt6 { 2001:db8:a::/64 }\n", nft.last)
        self.assertIn(
            "loaded a snapshot: 2 exemptions (in force: 2001:db8:a::/64, 203.0.113.5), cursor 4",
            logs.output[0],
        )

    def test_it_applies_each_page_of_changes_as_one_transaction_and_logs_it(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        nft.take()
        exemptions = self.approve("203.0.113.8/29", "2001:db8:a::25")
        with self.assertLogs("portal.agent", "INFO") as logs:
            agent.sync_once()
        self.assertEqual(
            nft.take(),
            [
                "add element inet egress_port25 exempt4 { 203.0.113.8/29 }\n"
                "add element inet egress_port25 exempt6 { 2001:db8:a::25 }\n"
            ],
        )
        self.assertIn(
            "applied 2 change(s): added 2001:db8:a::25, 203.0.113.8/29; removed -; cursor 2", logs.output[0]
        )

        self.move(exemptions[0], "exemption.suspended", "Listed on a DNSBL")
        with self.assertLogs("portal.agent", "INFO") as logs:
            agent.sync_once()
        self.assertEqual(nft.take(), ["delete element inet egress_port25 exempt4 { 203.0.113.8/29 }\n"])
        self.assertIn("applied 1 change(s): added -; removed 203.0.113.8/29; cursor 3", logs.output[0])

    def test_it_asks_with_if_none_match_so_that_an_idle_poll_costs_a_304(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        agent.sync_once()
        agent.sync_once()
        self.assertEqual(agent.client.not_modified, 2)
        self.assertEqual(len(nft.transactions), 2)  # the table at start, then the snapshot

    def test_it_pages_through_a_long_feed(self) -> None:
        agent, nft = self.started_agent(page_size=1)
        agent.sync_once()
        nft.take()
        self.approve("203.0.113.5", "203.0.113.7", "203.0.113.9")
        agent.sync_once()
        self.assertEqual(len(nft.take()), 3)
        self.assertEqual(agent.cursor, 3)

    def test_it_takes_a_snapshot_when_the_feed_was_reset_behind_its_cursor(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        agent, nft = self.started_agent()
        agent.sync_once()
        agent.cursor = 40  # the portal was restored from a backup older than what we applied
        with self.assertLogs("portal.agent", "WARNING") as logs:
            self.assertTrue(agent.sync_once())
        self.assertIn("can't continue from our cursor 40 (its feed is at 1", logs.output[0])
        self.assertIn("delete table inet egress_port25", nft.last)
        self.assertEqual((agent.cursor, agent.exemptions), (1, {str(exemption.id): exemption.network}))

    def test_it_takes_a_snapshot_when_the_feed_skips_a_change(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        self.approve("203.0.113.5")
        self.approve("203.0.113.6")
        with self.portal():
            FeedChange.objects.filter(seq=1).delete()
        with self.assertLogs("portal.agent", "WARNING") as logs:
            self.assertTrue(agent.sync_once())
        self.assertIn("the change feed jumps from 0 to 2; taking a snapshot", logs.output[0])
        self.assertIn("add element inet egress_port25 exempt4 { 203.0.113.5, 203.0.113.6 }", nft.last)
        self.assertEqual(agent.cursor, 2)

    def test_it_takes_a_snapshot_when_the_kernel_refuses_a_batch(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        self.approve("203.0.113.5")
        nft.failures = ["Error: interval overlaps with an existing one"]
        with self.assertLogs("portal.agent", "ERROR") as logs:
            self.assertTrue(agent.sync_once())
        self.assertIn("nftables refused a batch (Error: interval overlaps", logs.output[0])
        self.assertIn("delete table inet egress_port25", nft.last)
        self.assertEqual(agent.cursor, 1)

    def test_a_sighup_takes_a_fresh_snapshot(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        nft.take()
        agent.request_snapshot()
        self.assertTrue(agent.wake.is_set())
        agent.sync_once()
        (text,) = nft.take()
        self.assertIn("delete table inet egress_port25", text)


class UnreachablePortalTestCase(PortalLiveTestCase):
    def test_it_keeps_the_set_in_force_when_the_portal_stops_answering(self) -> None:
        self.approve("203.0.113.5")
        agent, nft = self.started_agent()
        agent.sync_once()
        nft.take()
        agent.client = PortalClient(dead_url(), self.key, timeout=1)
        with self.assertLogs("portal.agent", "WARNING") as logs:
            self.assertFalse(agent.sync_once())
            self.assertFalse(agent.sync_once())
        self.assertIn("is unreachable", logs.output[0])
        self.assertIn("the set in force stays, trying again", logs.output[0])
        self.assertEqual(nft.transactions, [])
        self.assertEqual(list(agent.exemptions.values()), [ipaddress.ip_network("203.0.113.5")])
        self.assertEqual(agent.failures, 2)

    def test_it_enforces_the_saved_set_when_the_portal_is_unreachable_at_start(self) -> None:
        url = dead_url()
        saved = {"e1": ipaddress.ip_network("203.0.113.5")}
        StateFile(self.state_dir).save(SavedState(portal=url, cursor=12, exemptions=saved))
        agent, nft = self.started_agent(portal_url=url, timeout_seconds=1)
        nft.take()
        with self.assertLogs("portal.agent", "WARNING") as logs:
            self.assertFalse(agent.sync_once())
        self.assertIn("enforcing the 1 exemptions saved at", logs.output[-1])
        (text,) = nft.take()
        self.assertIn("add element inet egress_port25 exempt4 { 203.0.113.5 }", text)
        self.assertFalse(agent.sync_once())
        self.assertEqual(nft.transactions, [])  # restored once, not at every retry

    def test_it_leaves_the_kernel_alone_when_unreachable_at_start_without_a_saved_set(self) -> None:
        agent, nft = self.started_agent(portal_url=dead_url(), timeout_seconds=1)
        nft.take()
        with self.assertLogs("portal.agent", "WARNING") as logs:
            agent.sync_once()
        self.assertIn(
            "no saved state to fall back on; the sets in the kernel stay as they are", logs.output[-1]
        )
        self.assertEqual(nft.transactions, [])

    def test_it_retries_with_exponential_backoff_up_to_the_maximum(self) -> None:
        agent, _ = self.started_agent(poll_seconds=2, max_backoff_seconds=60)
        delays = []
        for failures in (1, 2, 3, 4, 5, 10):
            agent.failures = failures
            delays.append(agent._backoff())
        for delay, ceiling in zip(delays, (4, 8, 16, 32, 60, 60), strict=True):
            self.assertTrue(0.75 * ceiling <= delay <= ceiling, (delay, ceiling))
        agent.retry_after = 45
        agent.failures = 1
        self.assertEqual(agent._backoff(), 45)

    def test_it_picks_up_where_it_was_when_the_portal_comes_back(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        live = agent.client
        agent.client = PortalClient(dead_url(), self.key, timeout=1)
        with self.assertLogs("portal.agent", "WARNING"):
            agent.sync_once()
        self.approve("203.0.113.5")
        agent.client = live
        nft.take()
        self.assertTrue(agent.sync_once())
        self.assertEqual(nft.take(), ["add element inet egress_port25 exempt4 { 203.0.113.5 }\n"])
        self.assertEqual((agent.failures, agent.last_error), (0, None))
