"""Who reaches the staff pages and the reviewer API: customers, anonymous visitors and each staff role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import Scope
from portal.review.models import DenialReason
from portal.unblock.models import UnblockRequest
from tests.review.base import ReviewTestCase

# A POST that each staff role may make, built for a fresh request: (url, data, status for staff).
type Post = tuple[str, dict[str, Any], int]


class WebRoleMatrixTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5")
        self.canned = DenialReason.objects.create(title="Matrix reason", text="Use port 587.")

    def pages(self) -> list[str]:
        return [
            "/review/",
            "/review/?state=submitted&band=high&overdue=on&assignee=mine&q=acme",
            f"/review/requests/{self.req.id}/",
            "/review/audit/",
            "/review/audit/?format=csv",
            "/reputation/",
            f"/reputation/tenants/{self.acme.id}/",
            "/reputation/addresses/203.0.113.5/",
        ]

    def posts(self) -> list[Callable[[], Post]]:
        def on_new_request(path: str, data: dict[str, Any], status: int) -> Callable[[], Post]:
            def build() -> Post:
                address = self.fresh_address()
                req = self.queued(self.acme, address)
                body = {**data, "cidrs": [address]} if "cidrs" in data else data
                return f"/review/requests/{req.id}/{path}", body, status

            return build

        def bulk() -> Post:
            req = self.queued(self.acme, "203.0.113.5")
            return "/review/bulk/", {"ids": [str(req.id)], "action": "claim"}, 302

        return [
            on_new_request("approve/", {"cidrs": ["203.0.113.5"], "expiry": "365", "note": "ok"}, 302),
            on_new_request("deny/", {"canned": self.canned.pk, "text": "Sorry."}, 302),
            on_new_request("ask/", {"question": "Which DKIM selector?"}, 302),
            on_new_request("note/", {"text": "PTR checked by hand."}, 302),
            on_new_request("assign/", {"claim": "1"}, 302),
            on_new_request("recheck/", {}, 302),
            bulk,
            lambda: ("/reputation/notes/", {"address": "203.0.113.5", "summary": "Checked"}, 302),
            lambda: ("/reputation/arf/", {}, 400),  # no report attached: the form says so
        ]

    def test_it_shows_every_staff_page_to_every_staff_role(self) -> None:
        for user in (self.rita, self.ada, self.root):
            self.client.force_login(user)
            for url in self.pages():
                with self.subTest(user=user.email, url=url):
                    r = self.client.get(url)
                    self.assertEqual(r.status_code, 200)
        self.assertEqual(
            self.client.get("/review/audit/?format=csv")["Content-Type"], "text/csv; charset=utf-8"
        )

    def test_it_lets_every_staff_role_take_every_action(self) -> None:
        for user in (self.rita, self.ada, self.root):
            self.client.force_login(user)
            for build in self.posts():
                url, data, status = build()
                with self.subTest(user=user.email, url=url):
                    r = self.client.post(url, data)
                    self.assertEqual(r.status_code, status, r.content[:300])

    def test_it_hides_every_staff_page_and_action_from_customers(self) -> None:
        self.client.force_login(self.alice)
        for url in self.pages():
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)
        for build in self.posts():
            url, data, _ = build()
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data).status_code, 404)
        self.assertFalse(UnblockRequest.objects.exclude(state="submitted").exists())

    def test_it_sends_anonymous_visitors_to_the_login(self) -> None:
        for url in self.pages():
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertEqual(r.status_code, 302)
                self.assertTrue(r["Location"].startswith("/login/?next="), r["Location"])
        for build in self.posts():
            url, data, _ = build()
            with self.subTest(url=url):
                r = self.client.post(url, data)
                self.assertRedirects(r, f"/login/?next={url}", fetch_redirect_response=False)
        self.assertFalse(UnblockRequest.objects.exclude(state="submitted").exists())

    def test_it_grants_no_expiry_to_approvers_only(self) -> None:
        expected = {self.rita: 403, self.ada: 302, self.root: 302}
        for user, status in expected.items():
            address = self.fresh_address()
            req = self.queued(self.acme, address)
            self.client.force_login(user)
            with self.subTest(user=user.email):
                r = self.client.post(
                    f"/review/requests/{req.id}/approve/",
                    {"cidrs": [address], "expiry": "never", "note": ""},
                )
                self.assertEqual(r.status_code, status)
                req.refresh_from_db()
                if status == 403:
                    self.assertContains(
                        r,
                        "Only approvers can grant an exemption with no expiry; choose an expiry date.",
                        status_code=403,
                    )
                    self.assertEqual(req.state, "submitted")
                else:
                    self.assertEqual(req.state, "approved")
                    self.assertIsNone(req.exemptions.get().expires_at)


class ApiRoleMatrixTestCase(ReviewTestCase):
    def actions(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        """(method, url, body) for each reviewer API operation, on a fresh request."""
        rows: list[tuple[str, str, dict[str, Any] | None]] = [("get", "/api/v1/review/requests", None)]
        in_a_year = (timezone.now() + timedelta(days=365)).isoformat()
        for path, body in (
            ("", None),
            ("/approve", {"expires_at": in_a_year, "note": "ok"}),
            ("/deny", {"reason": "Use port 587."}),
            ("/request-info", {"question": "Which DKIM selector?"}),
            ("/assign", {"assignee": "ada@provider.example"}),
        ):
            req = self.queued(self.acme, self.fresh_address())
            rows.append(
                ("post" if body is not None else "get", f"/api/v1/review/requests/{req.id}{path}", body)
            )
        return rows

    def call(self, client: APIClient, method: str, url: str, body: dict[str, Any] | None) -> Any:
        if method == "get":
            return client.get(url)
        return client.post(url, body, format="json")

    def test_it_lets_every_staff_role_use_every_operation(self) -> None:
        for user in (self.rita, self.ada, self.root):
            client = self.reviewer_api(user)
            for method, url, body in self.actions():
                with self.subTest(user=user.email, url=url):
                    r = self.call(client, method, url, body)
                    self.assertEqual(r.status_code, 200, r.content[:300])

    def test_it_refuses_anonymous_callers(self) -> None:
        for method, url, body in self.actions():
            with self.subTest(url=url):
                r = self.call(APIClient(), method, url, body)
                self.assertEqual(r.status_code, 401)
                self.assertEqual(r["WWW-Authenticate"], 'Bearer realm="api"')
        self.assertFalse(UnblockRequest.objects.exclude(state="submitted").exists())

    def test_it_refuses_keys_of_other_scopes(self) -> None:
        clients = {
            "customer": self.api(Scope.CUSTOMER),
            "enforcement": self.api(Scope.ENFORCEMENT),
            "provisioning": self.api(Scope.PROVISIONING),
        }
        for scope, client in clients.items():
            for method, url, body in self.actions():
                with self.subTest(scope=scope, url=url):
                    r = self.call(client, method, url, body)
                    self.assertEqual(r.status_code, 403)
                    self.assertEqual(r.json(), {"detail": "This operation needs a reviewer API key."})
        self.assertFalse(UnblockRequest.objects.exclude(state="submitted").exists())

    def test_it_refuses_a_reviewer_key_that_acts_as_a_customer(self) -> None:
        client = self.reviewer_api(self.alice)
        for method, url, body in self.actions():
            with self.subTest(url=url):
                r = self.call(client, method, url, body)
                self.assertEqual(r.status_code, 403)
                self.assertIn("not tied to an active reviewer, approver or admin", r.json()["detail"])
        self.assertFalse(UnblockRequest.objects.exclude(state="submitted").exists())

    def test_it_grants_no_expiry_to_approvers_only(self) -> None:
        expected = {self.rita: 403, self.ada: 200, self.root: 200}
        for user, status in expected.items():
            req = self.queued(self.acme, self.fresh_address())
            with self.subTest(user=user.email):
                r = self.reviewer_api(user).post(
                    f"/api/v1/review/requests/{req.id}/approve", {"expires_at": None}, format="json"
                )
                self.assertEqual(r.status_code, status)
                if status == 403:
                    self.assertEqual(
                        r.json()["detail"],
                        "Only approvers can grant an exemption with no expiry; choose an expiry date.",
                    )
                else:
                    self.assertEqual([e["expires_at"] for e in r.json()["exemptions"]], [None])
