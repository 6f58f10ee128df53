"""The flow forwarder: pmacct's JSON files to the telemetry API, each line counted once."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

from django.test import SimpleTestCase

from portal.agent import flows
from tests.agent.receiver import Answer, Receiver, receiving

KEY = "eep_0123456789ab" + "f" * 43


def line(address: str, packets: int, *, port: int = 25, minute: int = 23) -> str:
    return json.dumps(
        {
            "event_type": "purge",
            "ip_src": address,
            "port_dst": port,
            "stamp_inserted": f"2026-12-02 09:{minute:02d}:00",
            "stamp_updated": f"2026-12-02 09:{minute:02d}:41",
            "packets": packets,
            "bytes": 60 * packets,
        }
    )


class FlowsTestCase(SimpleTestCase):
    receiver: Receiver

    def setUp(self) -> None:
        self.receiver = self.enterContext(receiving(KEY))
        self.pmacct = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.state = Path(self.enterContext(tempfile.TemporaryDirectory()))

    def write(self, name: str, *lines: str, append: bool = False) -> Path:
        path = self.pmacct / name
        with open(path, "a" if append else "w") as file:
            file.write("".join(f"{text}\n" for text in lines))
        return path

    def forward(self, target: Path | None = None, *options: str) -> int:
        argv = [str(target or self.pmacct), "--portal-url", self.receiver.url, "--agent-name", "col-1"]
        argv += ["--state-dir", str(self.state), "--max-backoff-seconds", "0.05", *options]
        return flows.main(argv, {"EEP_AGENT_KEY": KEY}, threading.Event())

    def observed(self) -> dict[str, int]:
        return {a: t["observed"] for a, t in self.receiver.totals().items()}

    def test_it_sums_port_25_packets_per_source_and_posts_them_as_observed(self) -> None:
        self.write(
            "flows-1796203380.json",
            line("192.0.2.10", 30),
            line("192.0.2.10", 5, minute=24),
            line("2001:db8::5", 7),
            line("192.0.2.10", 99, port=587),
        )
        self.assertEqual(self.forward(), 0)
        (received,) = self.receiver.received
        body = received.body
        self.assertEqual(received.headers["Authorization"], f"Bearer {KEY}")
        self.assertEqual((body["agent"], body["source"], body["estimated"]), ("col-1", "pmacct", False))
        self.assertEqual((body["start"], body["end"]), ("2026-12-02T09:23:00Z", "2026-12-02T09:24:41Z"))
        self.assertEqual(self.observed(), {"192.0.2.10": 35, "2001:db8::5": 7})

    def test_sampled_flows_are_scaled_and_marked_as_estimates(self) -> None:
        self.write("flows-1.json", line("192.0.2.10", 3))
        self.assertEqual(self.forward(None, "--sampling-rate", "1000"), 0)
        self.assertTrue(self.receiver.received[0].body["estimated"])
        self.assertEqual(self.observed(), {"192.0.2.10": 3000})

    def test_running_again_sends_only_what_is_new(self) -> None:
        self.write("flows-1.json", line("192.0.2.10", 30))
        self.forward()
        self.forward()
        self.assertEqual(len(self.receiver.received), 1)
        self.write("flows-1.json", line("192.0.2.10", 4, minute=24), append=True)
        self.write("flows-2.json", line("192.0.2.11", 2))
        self.forward()
        self.assertEqual(self.observed(), {"192.0.2.10": 34, "192.0.2.11": 2})
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 2, 3])

    def test_a_line_pmacct_is_still_writing_waits_for_its_end(self) -> None:
        path = self.write("flows-1.json", line("192.0.2.10", 30))
        with open(path, "a") as file:
            file.write(line("192.0.2.11", 8)[:20])
        self.forward(path)
        self.assertEqual(self.observed(), {"192.0.2.10": 30})
        with open(path, "a") as file:
            file.write(line("192.0.2.11", 8)[20:] + "\n")
        self.forward(path)
        self.assertEqual(self.observed(), {"192.0.2.10": 30, "192.0.2.11": 8})

    def test_a_report_the_portal_did_not_confirm_is_resent_with_its_number_by_the_next_run(self) -> None:
        self.write("flows-1.json", line("192.0.2.10", 30))
        self.receiver.script = [Answer(503)] * 3
        self.assertEqual(self.forward(None, "--retries", "3"), 1)
        self.assertEqual(self.forward(), 0)
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 1, 1, 1])
        self.forward()
        self.assertEqual(self.observed(), {"192.0.2.10": 30})

    def test_a_crash_after_the_portal_took_it_costs_a_duplicate_not_a_double_count(self) -> None:
        self.write("flows-1.json", line("192.0.2.10", 30))
        self.forward()
        state = json.loads((self.state / "flows.json").read_text())
        (entry,) = state["files"].values()
        # As if the process died between the portal's 202 and saving that it was sent.
        entry["sending"] = {"end": entry["done"], "first": 1, "count": 1}
        entry["done"] = 0
        (self.state / "flows.json").write_text(json.dumps(state))
        self.forward()
        self.assertEqual([r.body["sequence"] for r in self.receiver.received], [1, 1])
        self.assertEqual(self.observed(), {"192.0.2.10": 30})
        self.write("flows-2.json", line("192.0.2.11", 1))
        self.forward()
        self.assertEqual(self.receiver.received[-1].body["sequence"], 2)

    def test_it_explains_what_it_can_not_run_with(self) -> None:
        argv = ["/nonexistent", "--portal-url", self.receiver.url, "--state-dir", str(self.state)]
        with self.assertRaises(SystemExit):
            flows.main([], {})
        self.assertEqual(flows.main(argv, {"EEP_AGENT_KEY": KEY}), 2)
        self.assertEqual(flows.main([str(self.pmacct), "--portal-url", self.receiver.url], {}), 2)
