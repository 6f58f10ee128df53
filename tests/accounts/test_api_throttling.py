"""API throttles: wrong keys from one address, and too many requests with one key, see 429."""

from __future__ import annotations

from django.test import override_settings
from rest_framework.test import APIClient

from portal.accounts.models import Scope
from tests.base import PortalTestCase


class FailedAuthenticationThrottleTestCase(PortalTestCase):
    def test_it_answers_429_with_retry_after_to_a_run_of_wrong_keys(self) -> None:
        guesser = APIClient(REMOTE_ADDR="192.0.2.99")
        statuses = []
        for n in range(200):
            guesser.credentials(HTTP_AUTHORIZATION=f"Bearer eep_guess{n:04}")
            statuses.append(guesser.get("/api/v1/requests/"))

        self.assertEqual(statuses[0].status_code, 401)
        self.assertEqual(statuses[-1].status_code, 429)
        self.assertEqual(sum(r.status_code == 401 for r in statuses), 30)
        self.assertGreater(int(statuses[-1]["Retry-After"]), 0)
        self.assertEqual(statuses[-1]["Content-Type"], "application/json")

    def test_it_leaves_other_addresses_alone(self) -> None:
        guesser = APIClient(REMOTE_ADDR="192.0.2.99", HTTP_AUTHORIZATION="Bearer eep_wrong")
        for _ in range(40):
            guesser.get("/api/v1/requests/")

        customer = self.api(Scope.CUSTOMER)
        self.assertEqual(customer.get("/api/v1/requests/").status_code, 200)

    @override_settings(API_THROTTLE_FAILED_AUTH_RATE="")
    def test_it_can_be_switched_off(self) -> None:
        guesser = APIClient(HTTP_AUTHORIZATION="Bearer eep_wrong")
        self.assertEqual({guesser.get("/api/v1/requests/").status_code for _ in range(40)}, {401})


class ApiKeyThrottleTestCase(PortalTestCase):
    @override_settings(API_THROTTLE_KEY_RATE="5/min")
    def test_it_limits_requests_per_key(self) -> None:
        busy, other = self.api(Scope.CUSTOMER), self.api(Scope.CUSTOMER)
        statuses = [busy.get("/api/v1/requests/").status_code for _ in range(6)]

        self.assertEqual(statuses, [200] * 5 + [429])
        self.assertEqual(other.get("/api/v1/requests/").status_code, 200)
