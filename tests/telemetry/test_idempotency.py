"""A report resent (the agent's retry after a lost answer) counts once."""

from __future__ import annotations

from portal.telemetry.models import Agent, SmtpHour, TelemetryReport
from tests.telemetry.base import TelemetryTestCase, report


class IdempotencyTestCase(TelemetryTestCase):
    def test_it_counts_a_repeated_sequence_once_and_says_it_was_a_duplicate(self) -> None:
        body = report({"address": "203.0.113.10", "blocked": 7}, sequence=42)
        self.assertEqual(self.send(body).status_code, 202)
        again = self.send(body)
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json()["duplicate"], True)
        self.assertEqual(again.json()["sequence"], 42)
        self.assertEqual(SmtpHour.objects.get().blocked, 7)
        self.assertEqual(TelemetryReport.objects.count(), 1)

    def test_it_treats_a_sequence_below_the_last_one_as_already_counted(self) -> None:
        self.assertEqual(
            self.send(report({"address": "203.0.113.10", "blocked": 5}, sequence=10)).status_code, 202
        )
        older = self.send(report({"address": "203.0.113.10", "blocked": 5}, sequence=9))
        self.assertEqual(older.status_code, 200)
        self.assertEqual(older.json()["last_sequence"], 10)
        self.assertEqual(SmtpHour.objects.get().blocked, 5)

    def test_it_keeps_sequences_per_agent(self) -> None:
        self.send(report({"address": "203.0.113.10", "blocked": 5}, sequence=1, agent="gw-fra-1"))
        other = self.send(report({"address": "203.0.113.10", "blocked": 5}, sequence=1, agent="gw-ams-2"))
        self.assertEqual(other.status_code, 202)
        self.assertEqual(SmtpHour.objects.get().blocked, 10)
        self.assertEqual(
            sorted(Agent.objects.values_list("name", "last_sequence")), [("gw-ams-2", 1), ("gw-fra-1", 1)]
        )
