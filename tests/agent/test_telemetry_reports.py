"""Sending telemetry reports: the protocol, batches, retries and sequence numbers, against a real
local HTTP receiver standing in for the portal."""

from __future__ import annotations

import gzip
import json
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from django.test import SimpleTestCase

from portal.agent import VERSION
from portal.agent.outbox import Outbox, Poster, SequenceFile, retry_after_seconds
from portal.agent.report import Report
from tests.agent.receiver import Answer, Receiver, receiving

KEY = "eep_0123456789ab" + "k" * 43
START, END = datetime(2026, 12, 2, 9, 0, tzinfo=UTC), datetime(2026, 12, 2, 9, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def report(counts: dict[str, tuple[int, int]], start: datetime = START, end: datetime = END) -> Report:
    made = Report("nftables", start, end)
    for address, (blocked, accepted) in counts.items():
        made.add(address, blocked=blocked, accepted=accepted)
    return made


class TelemetryTestCase(SimpleTestCase):
    receiver: Receiver

    def setUp(self) -> None:
        self.receiver = self.enterContext(receiving(KEY))
        self.state = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.clock = Clock()

    def outbox(self, **options: int) -> Outbox:
        poster = Poster(self.receiver.url, KEY, "gw-fra-1", timeout=5)
        return Outbox(poster, SequenceFile(self.state / "telemetry.json"), clock=self.clock, **options)

    def send_all(self, outbox: Outbox) -> None:
        for _ in range(20):
            if not outbox.pending:
                return
            self.clock.now = max(self.clock.now, outbox.next_attempt)
            outbox.attempt()
        self.fail("the outbox did not empty")


class ProtocolTestCase(TelemetryTestCase):
    def test_it_posts_a_gzipped_json_report_with_the_enforcement_key(self) -> None:
        outbox = self.outbox()
        outbox.add(report({"192.0.2.10": (12, 0), "2001:db8::5": (0, 40)}))
        self.send_all(outbox)
        (received,) = self.receiver.received
        self.assertEqual(received.headers["Authorization"], f"Bearer {KEY}")
        self.assertEqual(received.headers["Content-Type"], "application/json")
        self.assertEqual(received.headers["Content-Encoding"], "gzip")
        self.assertEqual(
            received.body,
            {
                "agent": "gw-fra-1",
                "version": VERSION,
                "sequence": 1,
                "source": "nftables",
                "start": "2026-12-02T09:00:00Z",
                "end": "2026-12-02T09:01:00Z",
                "estimated": False,
                "counts": [
                    {"address": "192.0.2.10", "blocked": 12},
                    {"address": "2001:db8::5", "accepted": 40},
                ],
            },
        )

    def test_an_interval_without_connections_is_still_reported_so_the_portal_knows_the_agent_lives(
        self,
    ) -> None:
        outbox = self.outbox()
        outbox.add(report({}))
        self.send_all(outbox)
        self.assertEqual(self.receiver.received[0].body["counts"], [])

    def test_it_splits_a_large_report_into_batches_with_consecutive_sequences(self) -> None:
        outbox = self.outbox(batch=3)
        outbox.add(report({f"198.51.100.{i}": (i, 0) for i in range(1, 8)}))
        outbox.add(report({"192.0.2.1": (1, 0)}))
        self.send_all(outbox)
        bodies = [r.body for r in self.receiver.received]
        self.assertEqual([b["sequence"] for b in bodies], [1, 2, 3, 4])
        self.assertEqual([len(b["counts"]) for b in bodies], [3, 3, 1, 1])
        self.assertEqual({b["start"] for b in bodies}, {"2026-12-02T09:00:00Z"})
        self.assertEqual(sum(c["blocked"] for b in bodies[:3] for c in b["counts"]), sum(range(1, 8)))


class RetryTestCase(TelemetryTestCase):
    def test_it_retries_a_5xx_with_the_same_sequence_and_body_backing_off_with_jitter(self) -> None:
        self.receiver.script = [Answer(503), Answer(502), Answer(500)]
        outbox = self.outbox()
        outbox.add(report({"192.0.2.10": (3, 0)}))
        delays = []
        for _ in range(3):
            self.assertIsNone(outbox.attempt())
            delays.append(outbox.next_attempt - self.clock.now)
            self.assertFalse(outbox.due())
            self.clock.now = outbox.next_attempt
        self.assertIsNotNone(outbox.attempt())
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 1, 1, 1])
        self.assertEqual(len({json.dumps(r.body) for r in self.receiver.received}), 1)
        for failure, delay in enumerate(delays):
            self.assertTrue(0.5 * 2**failure <= delay <= 2**failure, delays)
        self.assertEqual(outbox.failures, 0)

    def test_it_waits_as_long_as_retry_after_says_on_429(self) -> None:
        self.receiver.script = [Answer(429, {"Retry-After": "30"})]
        outbox = self.outbox()
        outbox.add(report({"192.0.2.10": (1, 0)}))
        outbox.attempt()
        self.assertGreaterEqual(outbox.next_attempt - self.clock.now, 30)
        self.clock.now += 29
        self.assertFalse(outbox.due())
        self.send_all(outbox)
        self.assertEqual(len(self.receiver.received), 2)

    def test_it_keeps_trying_through_a_network_failure(self) -> None:
        poster = Poster("http://127.0.0.1:9", KEY, "gw-fra-1", timeout=1)  # nothing listens on port 9
        outbox = Outbox(poster, SequenceFile(self.state / "telemetry.json"), clock=self.clock)
        outbox.add(report({"192.0.2.10": (1, 0)}))
        self.assertIsNone(outbox.attempt())
        self.assertEqual(len(outbox), 1)
        outbox.poster = Poster(self.receiver.url, KEY, "gw-fra-1")
        self.send_all(outbox)
        self.assertEqual(self.receiver.received[0].body["sequence"], 1)

    def test_it_drops_a_report_the_portal_refuses_as_bad_but_keeps_one_whose_key_is_refused(self) -> None:
        self.receiver.script = [Answer(400, body={"detail": "counts: too many"}), Answer(401)]
        outbox = self.outbox()
        outbox.add(report({"192.0.2.10": (1, 0)}))
        outbox.add(report({"192.0.2.11": (1, 0)}))
        with self.assertLogs("portal.agent", "ERROR") as logs:
            outbox.attempt()
            outbox.attempt()
        self.assertIn("refused the report with 400: counts: too many", logs.output[0])
        self.assertEqual(len(outbox), 1)
        self.assertIn("refused the agent's key", logs.output[1])
        self.send_all(outbox)
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 2, 2])

    def test_reports_piling_up_are_merged_never_those_already_numbered(self) -> None:
        self.receiver.script = [Answer(503)]
        outbox = self.outbox(max_unsent=2)
        outbox.add(report({"192.0.2.1": (1, 0)}))
        outbox.attempt()  # numbered 1 and maybe at the portal: it must go out exactly as it was
        for minute in range(1, 4):
            start = START.replace(minute=minute)
            outbox.add(report({"192.0.2.2": (minute, 0)}, start, start.replace(minute=minute + 1)))
        self.assertEqual(len(outbox), 3)
        self.send_all(outbox)
        bodies = [r.body for r in self.receiver.received]
        self.assertEqual([b["sequence"] for b in bodies], [1, 1, 2, 3])
        self.assertEqual(bodies[1], bodies[0])
        self.assertEqual(
            (bodies[2]["start"], bodies[2]["end"], bodies[2]["counts"]),
            ("2026-12-02T09:01:00Z", "2026-12-02T09:03:00Z", [{"address": "192.0.2.2", "blocked": 3}]),
        )

    def test_retry_after_may_be_a_date(self) -> None:
        self.assertEqual(retry_after_seconds("120"), 120)
        self.assertEqual(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), 0)
        self.assertIsNone(retry_after_seconds("soon"))


class SequenceTestCase(TelemetryTestCase):
    def test_a_restart_continues_the_sequence_it_saved(self) -> None:
        outbox = self.outbox()
        outbox.add(report({"192.0.2.1": (1, 0)}))
        self.send_all(outbox)
        again = self.outbox()  # a new process: the same state directory
        again.add(report({"192.0.2.1": (2, 0)}))
        self.send_all(again)
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 2])
        saved = json.loads((self.state / "telemetry.json").read_text())
        self.assertEqual(saved["sequence"], 2)

    def test_it_saves_the_number_before_sending(self) -> None:
        self.receiver.script = [Answer(503)]
        outbox = self.outbox()
        outbox.add(report({"192.0.2.1": (1, 0)}))
        outbox.attempt()
        self.assertEqual(json.loads((self.state / "telemetry.json").read_text())["sequence"], 1)

    def test_a_lost_state_directory_is_noticed_and_the_numbers_jump_ahead(self) -> None:
        self.receiver.sequences.add(("gw-fra-1", 1))  # sent by an earlier life of this agent
        outbox = self.outbox()
        outbox.add(report({"192.0.2.1": (5, 0)}))
        with self.assertLogs("portal.agent", "WARNING") as logs:
            self.send_all(outbox)
        self.assertIn("the portal already had telemetry sequence 1", logs.output[0])
        first, second = (r.body["sequence"] for r in self.receiver.received)
        self.assertEqual(first, 1)
        self.assertGreater(second, 1_700_000_000)
        self.assertEqual(self.receiver.received[1].body["counts"], [{"address": "192.0.2.1", "blocked": 5}])

    def test_an_unreadable_sequence_file_jumps_ahead_rather_than_reuse_a_number(self) -> None:
        (self.state / "telemetry.json").write_text("{not json")
        with self.assertLogs("portal.agent", "WARNING"):
            first = SequenceFile(self.state / "telemetry.json").allocate(1)
        self.assertGreater(first, 1_700_000_000)


class BodyTestCase(SimpleTestCase):
    def test_the_body_is_gzip_and_leaves_out_zero_counts(self) -> None:
        made = Report("pmacct", START, END, estimated=True, sequence=9)
        made.add("198.51.100.7", observed=30)
        body = json.loads(gzip.decompress(made.body("gw")))
        self.assertEqual(body["counts"], [{"address": "198.51.100.7", "observed": 30}])
        self.assertTrue(body["estimated"])
        self.assertEqual(body["source"], "pmacct")

    def test_the_interval_sent_covers_the_one_counted_to_the_whole_second(self) -> None:
        made = Report("nftables", datetime(2026, 12, 2, 9, 0, 0, 700_000, tzinfo=UTC),
                      datetime(2026, 12, 2, 9, 1, 0, 300_000, tzinfo=UTC), sequence=1)  # fmt: skip
        body = json.loads(gzip.decompress(made.body("gw")))
        self.assertEqual((body["start"], body["end"]), ("2026-12-02T09:00:00Z", "2026-12-02T09:01:01Z"))

    def test_batches_are_the_same_every_time(self) -> None:
        made = report({f"192.0.2.{i}": (1, 0) for i in range(10, 0, -1)})
        self.assertEqual([list(b.counts) for b in made.batches(4)], [list(b.counts) for b in made.batches(4)])
        self.assertEqual(sum(len(b.counts) for b in made.batches(4)), 10)


class ThreadTestCase(TelemetryTestCase):
    def test_stop_sends_a_last_report(self) -> None:
        from portal.agent.telemetry import Telemetry

        class Reader:
            def take(self) -> tuple[datetime, datetime, dict[str, list[int]]]:
                return START, END, {"192.0.2.1": [4, 0]}

        telemetry = Telemetry(Reader(), self.outbox(), interval=3600)  # type: ignore[arg-type]
        stop = threading.Event()
        thread = telemetry.start(stop)
        stop.set()
        thread.join(timeout=10)
        self.assertFalse(thread.is_alive())
        self.assertEqual(self.receiver.totals()["192.0.2.1"]["blocked"], 4)
