"""Every page, as each role sees it, on a laptop (1366x900) and a phone (390x844): axe-core
finds no violation and the page logs no error (CSP violations included).

Django's own admin site is left out: its markup is Django's, not ours.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import ViewportSize

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.enforcement.models import Attempt, Delivery, DeliveryState, WebhookEndpoint
from portal.review.models import Approval, DenialReason
from portal.unblock.models import Message, MessageKind, State
from tests.base import make_exemption, make_request, make_user
from tests.browser.base import BrowserTestCase
from tests.browser.test_review_flow import filed_and_vetted

VIEWPORTS: dict[str, ViewportSize] = {
    "laptop": {"width": 1366, "height": 900},
    "phone": {"width": 390, "height": 844},
}


class EveryPagePassesAxeTestCase(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = make_user("root@provider.example", "reviewer", "approver", "admin")
        DenialReason.objects.update_or_create(title="Use port 587 or a relay", defaults={"text": "Use 587."})
        self.req = filed_and_vetted(self.acme, "203.0.113.5", "acme.example", band="medium", score=45)
        Message.objects.create(
            request=self.req,
            author=self.rita,
            author_label=self.rita.email,
            kind=MessageKind.QUESTION,
            body="Which DKIM selector do you sign with?",
        )
        Message.objects.create(
            request=self.req,
            author=self.alice,
            author_label=self.alice.email,
            kind=MessageKind.ANSWER,
            body="s2026 on acme.example.",
        )
        self.waiting = filed_and_vetted(self.globex, "198.51.100.70", "globex.example", band="high", score=80)
        Approval.objects.create(request=self.waiting, approver=self.rita, cidrs=["198.51.100.70"])
        self.denied = make_request(self.acme, "203.0.113.9", state=State.DENIED)
        self.exemption = make_exemption(self.acme, "203.0.113.20")
        record(
            actor=Actor(user=self.rita),
            action="review.assigned",
            obj=self.req,
            before={"assignee": None},
            after={"assignee": self.rita.email},
            reason="Taking it.",
        )
        self.endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.net/portal")
        delivery = Delivery.objects.create(
            endpoint=self.endpoint,
            event="exemption.granted",
            body='{"cidr": "203.0.113.20"}',
            state=DeliveryState.FAILED,
            attempts=1,
            created_at=timezone.now() - timedelta(hours=1),
        )
        Attempt.objects.create(delivery=delivery, error="certificate verify failed", duration_ms=80)

    def pages_of(self, role: str) -> list[str]:
        customer = [
            "/",
            "/requests/",
            "/requests/new/",
            f"/requests/{self.req.id}/",
            f"/requests/{self.denied.id}/",
            "/exemptions/",
            "/keys/",
            "/account/two-factor/",
        ]
        staff = [
            "/review/",
            f"/review/requests/{self.req.id}/",
            f"/review/requests/{self.waiting.id}/",
            "/review/exemptions/",
            "/review/agents/",
            "/review/audit/",
            "/reputation/",
            "/reputation/network/",
            f"/reputation/tenants/{self.acme.id}/",
            "/reputation/addresses/203.0.113.5/",
            "/account/two-factor/",
        ]
        admin = [*staff, "/review/webhooks/", f"/review/webhooks/{self.endpoint.id}/"]
        return {"customer": customer, "reviewer": staff, "approver": staff, "admin": admin}[role]

    def check_every_page(self, role: str, email: str) -> None:
        page = self.new_page()
        self.log_in(email, page=page)
        for path in self.pages_of(role):
            for name, size in VIEWPORTS.items():
                with self.subTest(role=role, path=path, viewport=name):
                    page.set_viewport_size(size)
                    response = page.goto(path)
                    assert response is not None
                    self.assertLess(response.status, 400, path)
                    self.assertNoAxeViolations(page, f"on {path} as {role} ({name})")
        self.assertNoConsoleErrors()

    def test_the_sign_in_page(self) -> None:
        for name, size in VIEWPORTS.items():
            with self.subTest(viewport=name):
                self.page.set_viewport_size(size)
                self.page.goto("/login/")
                self.assertNoAxeViolations(where=f"on /login/ ({name})")

    def test_every_customer_page(self) -> None:
        self.check_every_page("customer", self.alice.email)

    def test_every_reviewer_page(self) -> None:
        self.check_every_page("reviewer", self.rita.email)

    def test_every_approver_page(self) -> None:
        self.check_every_page("approver", self.ada.email)

    def test_every_admin_page(self) -> None:
        self.check_every_page("admin", self.root.email)
