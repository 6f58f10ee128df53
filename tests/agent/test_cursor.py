from __future__ import annotations

import ipaddress
import json
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from portal.agent.state import FORMAT, CorruptState, SavedState, StateFile
from portal.enforcement.models import FeedChange
from tests.agent.base import PortalLiveTestCase


class StateFileTestCase(SimpleTestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.file = StateFile(Path(directory.name) / "agent")

    def test_it_gives_back_what_it_saved(self) -> None:
        exemptions = {
            "e1": ipaddress.ip_network("203.0.113.5"),
            "e2": ipaddress.ip_network("2001:db8:a::/64"),
        }
        self.file.save(SavedState(portal="https://portal.example.net", cursor=41, exemptions=exemptions))
        loaded = self.file.load()
        assert loaded is not None
        self.assertEqual(
            (loaded.portal, loaded.cursor, loaded.exemptions), ("https://portal.example.net", 41, exemptions)
        )
        self.assertGreater(loaded.saved_at, 0)
        self.assertEqual(
            [p.name for p in self.file.path.parent.iterdir()], ["state.json"]
        )  # no temporary left

    def test_it_has_nothing_before_the_first_save(self) -> None:
        self.assertIsNone(self.file.load())

    def test_it_calls_anything_unreadable_corrupt(self) -> None:
        valid = {
            "format": FORMAT,
            "portal": "https://p",
            "cursor": 3,
            "saved_at": 1.0,
            "exemptions": {"e1": "203.0.113.5"},
        }
        cases = {
            "truncated": json.dumps(valid)[:40],
            "not JSON": "\x00\x01garbage",
            "another format": json.dumps({**valid, "format": "something/1"}),
            "negative cursor": json.dumps({**valid, "cursor": -1}),
            "cursor as text": json.dumps({**valid, "cursor": "3"}),
            "a block that is not one": json.dumps(
                {**valid, "exemptions": {"e1": "203.0.113.5; flush ruleset"}}
            ),
            "host bits set": json.dumps({**valid, "exemptions": {"e1": "203.0.113.5/24"}}),
        }
        self.file.path.parent.mkdir(parents=True)
        for case, text in cases.items():
            with self.subTest(case):
                self.file.path.write_text(text)
                with self.assertRaises(CorruptState):
                    self.file.load()

    def test_it_sets_a_corrupt_file_aside_for_whoever_investigates(self) -> None:
        self.file.path.parent.mkdir(parents=True)
        self.file.path.write_text("{")
        aside = self.file.set_aside()
        self.assertEqual(aside.read_text(), "{")
        self.assertFalse(self.file.path.exists())


class CursorPersistenceTestCase(PortalLiveTestCase):
    def saved(self) -> SavedState:
        state = StateFile(self.state_dir).load()
        assert state is not None
        return state

    def test_it_saves_the_cursor_after_each_apply(self) -> None:
        agent, _ = self.started_agent()
        self.assertTrue(agent.sync_once())
        self.assertEqual(self.saved().cursor, 0)
        (exemption,) = self.approve("203.0.113.5")
        self.assertTrue(agent.sync_once())
        saved = self.saved()
        self.assertEqual(saved.cursor, FeedChange.objects.get().seq)
        self.assertEqual(saved.exemptions, {str(exemption.id): ipaddress.ip_network("203.0.113.5")})
        self.assertEqual(saved.portal, self.live_server_url)

    def test_it_does_not_move_the_cursor_when_the_kernel_refuses_the_batch(self) -> None:
        agent, nft = self.started_agent()
        agent.sync_once()
        self.approve("203.0.113.5")
        # The batch fails, and so does the snapshot that should heal it.
        nft.failures = ["Error: Could not process rule: No such file or directory"] * 2
        with self.assertLogs("portal.agent", "ERROR"):
            self.assertFalse(agent.sync_once())
        self.assertEqual(self.saved().cursor, 0)
        self.assertEqual(agent.cursor, 0)
        self.assertTrue(agent.sync_once())  # and next time it heals
        self.assertEqual(self.saved().cursor, 1)

    def test_it_heals_a_corrupt_cursor_file_with_a_snapshot(self) -> None:
        (exemption,) = self.approve("203.0.113.5")
        (self.state_dir / "state.json").write_text(
            '{"format": "egress-exemption-agent-state/1", "cursor": 99'
        )
        with self.assertLogs("portal.agent", "WARNING") as logs:
            agent, nft = self.started_agent()
        self.assertIn("the state file is corrupt", logs.output[0])
        self.assertTrue((self.state_dir / "state.json.corrupt").exists())

        self.assertTrue(agent.sync_once())
        self.assertIn("delete table inet egress_port25", nft.last)  # a whole new table: a snapshot
        self.assertIn("add element inet egress_port25 exempt4 { 203.0.113.5 }", nft.last)
        self.assertEqual(self.saved().cursor, 1)
        self.assertEqual(self.saved().exemptions, {str(exemption.id): ipaddress.ip_network("203.0.113.5")})

    def test_it_ignores_a_cursor_saved_for_another_portal(self) -> None:
        StateFile(self.state_dir).save(
            SavedState(portal="https://elsewhere.example", cursor=7, exemptions={})
        )
        with self.assertLogs("portal.agent", "WARNING") as logs:
            agent, _ = self.started_agent()
        self.assertIn("belongs to https://elsewhere.example", logs.output[0])
        self.assertIsNone(agent.saved)
