"""Hostile bodies get a JSON error with a 4xx on every API endpoint, never a 500 or an HTML page."""

from __future__ import annotations

import http.client
import io
import json
from urllib.parse import urlsplit

from django.test import LiveServerTestCase, override_settings

from portal.accounts.models import ApiKey, Scope
from portal.ops.parsers import MAX_JSON_DEPTH, BoundedJSONParser, PayloadTooLarge
from tests.base import PortalTestCase, complete_request_data

MB = 2**20


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def big_body(size: int) -> bytes:
    return b'{"justification": "' + b"x" * size + b'"}'


class DeepJsonTestCase(PortalTestCase):
    def assertProblem(self, response: object, status: int, words: str) -> None:
        self.assertEqual(response.status_code, status, response.content)  # type: ignore[attr-defined]
        self.assertEqual(response["Content-Type"], "application/json")  # type: ignore[index]
        self.assertIn(words, response.json()["detail"])  # type: ignore[attr-defined]

    def test_it_refuses_json_nested_ten_thousand_deep_when_filing_a_request(self) -> None:
        r = self.api().post("/api/v1/requests/", nested(10_000), content_type="application/json")
        self.assertProblem(r, 400, f"more than {MAX_JSON_DEPTH} levels deep")

    def test_it_refuses_json_nested_ten_thousand_deep_when_provisioning(self) -> None:
        r = self.api(Scope.PROVISIONING).put(
            "/api/v1/tenants/acme-1", '{"name": ' + nested(10_000) + "}", content_type="application/json"
        )
        self.assertProblem(r, 400, f"more than {MAX_JSON_DEPTH} levels deep")

    def test_it_refuses_deep_json_on_every_json_endpoint(self) -> None:
        r = self.api(Scope.PROVISIONING).post(
            "/api/v1/reputation/events", nested(10_000), content_type="application/json"
        )
        self.assertProblem(r, 400, "levels deep")

    def test_it_still_reads_brackets_inside_strings_as_text(self) -> None:
        data = complete_request_data(justification="[" * 500 + " We run our own MX. " + "}" * 500)
        r = self.api().post("/api/v1/requests/", json.dumps(data), content_type="application/json")
        self.assertEqual(r.status_code, 201, r.content)

    def test_it_says_where_a_body_is_not_utf8(self) -> None:
        r = self.api().post(
            "/api/v1/requests/", b'{"justification": "caf\xe9"}', content_type="application/json"
        )
        self.assertProblem(r, 400, "not valid utf-8")


class OversizedBodyTestCase(PortalTestCase):
    def test_it_answers_a_10_mb_body_with_a_json_413(self) -> None:
        r = self.api().post("/api/v1/requests/", big_body(10 * MB), content_type="application/json")
        self.assertEqual(r.status_code, 413)
        self.assertEqual(r["Content-Type"], "application/json")
        self.assertIn("larger than 2,621,440 bytes", r.json()["detail"])

    @override_settings(DEBUG=True)
    def test_it_answers_a_20_mb_body_with_a_json_413_even_in_debug(self) -> None:
        r = self.api(Scope.PROVISIONING).put(
            "/api/v1/tenants/acme-1", big_body(20 * MB), content_type="application/json"
        )
        self.assertEqual(r.status_code, 413)
        self.assertEqual(r["Content-Type"], "application/json")
        self.assertNotIn(b"SECRET_KEY", r.content)

    def test_it_bounds_a_body_read_from_the_stream(self) -> None:
        # DRF reads the stream itself, past Django's size check, when nothing read the body first.
        with self.assertRaises(PayloadTooLarge):
            BoundedJSONParser().parse(io.BytesIO(big_body(3 * MB)))

    def test_it_answers_an_unknown_api_url_in_json(self) -> None:
        r = self.api().get("/api/v1/no-such-thing")
        self.assertEqual(r.status_code, 404)
        self.assertEqual(r.json(), {"detail": "Not Found."})

    def test_it_leaves_pages_outside_the_api_alone(self) -> None:
        r = self.client.get("/no-such-page")
        self.assertEqual(r.status_code, 404)
        self.assertTrue(r["Content-Type"].startswith("text/html"))


class OversizedBodyLiveTestCase(LiveServerTestCase):
    def test_it_answers_a_20_mb_body_over_a_real_socket_with_a_json_413(self) -> None:
        _, key = ApiKey.issue(name="live", scope=Scope.PROVISIONING, tenant=None, created_by=None)
        address = urlsplit(self.live_server_url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        self.addCleanup(connection.close)
        connection.request(
            "PUT",
            "/api/v1/tenants/acme-1",
            body=big_body(20 * MB),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        self.assertEqual(response.status, 413)
        self.assertEqual(response.getheader("Content-Type"), "application/json")
        self.assertIn("larger than", json.loads(response.read())["detail"])


class NulInQueryTestCase(PortalTestCase):
    def test_it_refuses_a_nul_character_in_a_query_parameter_with_a_json_400(self) -> None:
        # PostgreSQL refuses NUL in text: the staff-email look-up behind `assignee` raised there.
        response = self.api(Scope.REVIEWER).get("/api/v1/review/requests?assignee=a%00b&overdue=false")
        self.assertEqual(response.status_code, 400, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn("NUL", response.json()["assignee"][0])

    def test_it_refuses_a_nul_character_in_a_parameter_name(self) -> None:
        response = self.api().get("/api/v1/requests/?st%00ate=draft")
        self.assertEqual(response.status_code, 400, response.content)
        self.assertIn("NUL", response.json()["state"][0])
