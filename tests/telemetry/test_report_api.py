"""POST /api/v1/telemetry/smtp: who may send, what a report must look like, and what comes back."""

from __future__ import annotations

import base64
import gzip
from typing import Any

from django.test import override_settings
from rest_framework.test import APIClient

from portal.accounts.models import ApiKey, Scope
from portal.telemetry.models import Agent, SmtpHour, TelemetryReport
from tests.telemetry.base import TelemetryTestCase, report


class ReportApiTestCase(TelemetryTestCase):
    def error_of(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.send(body)
        self.assertEqual(response.status_code, 400, response.content)
        self.assertFalse(SmtpHour.objects.exists())
        self.assertFalse(TelemetryReport.objects.exists())
        errors: dict[str, Any] = response.json()
        return errors

    def test_it_accepts_a_gzip_report_and_says_what_it_counted(self) -> None:
        response = self.send(
            report(
                {"address": "203.0.113.10", "blocked": 12, "accepted": 0},
                {"address": "2001:db8:a::5", "accepted": 40},
                {"address": "198.51.100.70", "observed": 30},
            )
        )
        self.assertEqual(response.status_code, 202, response.content)
        self.assertEqual(
            response.json(),
            {"sequence": 1, "duplicate": False, "addresses": 3, "last_sequence": 1, "signals": 0},
        )
        self.assertEqual(SmtpHour.objects.count(), 3)

    def test_it_accepts_an_uncompressed_report(self) -> None:
        response = self.send(report({"address": "203.0.113.10", "blocked": 1}), compress=False)
        self.assertEqual(response.status_code, 202, response.content)
        self.assertEqual(SmtpHour.objects.get().blocked, 1)

    def test_it_accepts_a_report_with_no_counts_as_a_sign_of_life(self) -> None:
        response = self.send(report())
        self.assertEqual(response.status_code, 202, response.content)
        agent = Agent.objects.get()
        self.assertEqual((agent.name, agent.version, agent.last_sequence), ("gw-fra-1", "1.2.0", 1))
        self.assertIsNotNone(agent.last_report_at)

    def test_it_takes_the_key_as_basic_credentials_like_the_feeds(self) -> None:
        _, key = ApiKey.issue(name="fw", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"agent:{key}".encode()).decode())
        self.assertEqual(self.send(report(), client=client).status_code, 202)
        self.assertEqual(Agent.objects.get().api_key_id, ApiKey.objects.get(name="fw").pk)

    def test_it_refuses_without_a_key_with_a_bad_key_and_with_another_scope(self) -> None:
        anonymous = APIClient()
        self.assertEqual(self.send(report(), client=anonymous).status_code, 401)
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION="Bearer eep_000000000000notarealkeynotarealkey")
        self.assertEqual(self.send(report(), client=wrong).status_code, 401)
        for scope in (Scope.CUSTOMER, Scope.PROVISIONING):
            response = self.send(report(), client=self.api(scope))
            self.assertEqual(response.status_code, 403)
            self.assertIn("enforcement", response.json()["detail"])
        self.assertFalse(Agent.objects.exists())

    def test_it_refuses_a_revoked_key(self) -> None:
        api_key, key = ApiKey.issue(name="old", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)
        api_key.revoke()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        self.assertEqual(self.send(report(), client=client).status_code, 401)

    def test_it_names_each_bad_top_level_field(self) -> None:
        cases: list[tuple[dict[str, Any], str, str]] = [
            ({"agent": "gw fra 1"}, "agent", "letters, digits"),
            ({"agent": "x" * 65}, "agent", "64"),
            ({"version": ""}, "version", "blank"),
            ({"sequence": 0}, "sequence", "greater than or equal to 1"),
            ({"sequence": "next"}, "sequence", "valid integer"),
            ({"source": "netflow"}, "source", "not a valid choice"),
            ({"start": "yesterday"}, "start", "wrong format"),
            ({"end": "2000-01-01T00:00:00Z"}, "end", "before start"),
            ({"end": "2999-01-01T00:00:00Z"}, "end", "clock"),
            ({"estimated": "maybe"}, "estimated", "valid boolean"),
            ({"counts": {"192.0.2.1": 3}}, "counts", "list of objects"),
        ]
        for override, field, words in cases:
            with self.subTest(field=field, value=override[field]):
                errors = self.error_of(report(**override))
                self.assertIn(field, errors)
                self.assertIn(words, " ".join(errors[field]))

    def test_it_says_which_entry_of_counts_is_wrong_and_how(self) -> None:
        good = {"address": "203.0.113.10", "blocked": 1}
        cases: list[tuple[Any, str]] = [
            ("203.0.113.11", "counts[1] is not an object"),
            ({"blocked": 1}, "counts[1].address is missing"),
            ({"address": "203.0.113.0/29"}, "counts[1].address “203.0.113.0/29” is not an IP address"),
            ({"address": "mail.example"}, "is not an IP address"),
            ({"address": "203.0.113.11", "blocked": -1}, "counts[1].blocked is -1; give a whole number"),
            ({"address": "203.0.113.11", "accepted": 1.5}, "counts[1].accepted is 1.5"),
            ({"address": "203.0.113.11", "observed": True}, "counts[1].observed is True"),
            ({"address": "203.0.113.11", "dropped": 1}, "unknown field(s) dropped"),
        ]
        for entry, words in cases:
            with self.subTest(entry=entry):
                errors = self.error_of(report(good, entry))
                self.assertIn(words, errors["counts"][0])

    def test_it_refuses_more_than_100000_entries_and_says_to_split(self) -> None:
        entries = [
            {"address": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "blocked": 1} for i in range(100_001)
        ]
        errors = self.error_of(report(*entries))
        self.assertIn("100,001 entries; send at most 100,000", errors["counts"][0])

    def test_it_refuses_bad_gzip_other_encodings_and_other_content_types(self) -> None:
        response = self.agent.post(
            "/api/v1/telemetry/smtp",
            b"not gzip",
            content_type="application/json",
            HTTP_CONTENT_ENCODING="gzip",
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("not valid gzip", response.json()["detail"])
        truncated = gzip.compress(b'{"agent": "a"}' * 100)[:-20]
        response = self.agent.post(
            "/api/v1/telemetry/smtp", truncated, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
        )
        self.assertEqual(response.status_code, 400)
        response = self.agent.post(
            "/api/v1/telemetry/smtp", b"{}", content_type="application/json", HTTP_CONTENT_ENCODING="br"
        )
        self.assertEqual(response.status_code, 415)
        self.assertIn("send gzip", response.json()["detail"])
        response = self.agent.post("/api/v1/telemetry/smtp", b"agent=x", content_type="text/plain")
        self.assertEqual(response.status_code, 415)
        response = self.agent.post("/api/v1/telemetry/smtp", b"{nope", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("JSON parse error", response.json()["detail"])

    @override_settings(TELEMETRY_MAX_BYTES=1_000_000)
    def test_it_refuses_a_zip_bomb_without_inflating_it(self) -> None:
        bomb = gzip.compress(b" " * 50_000_000, compresslevel=9)  # ~50 KB that inflate to 50 MB
        self.assertLess(len(bomb), 100_000)
        response = self.agent.post(
            "/api/v1/telemetry/smtp", bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
        )
        self.assertEqual(response.status_code, 413)
        self.assertIn("larger than 1,000,000 bytes uncompressed", response.json()["detail"])
        self.assertFalse(Agent.objects.exists())
