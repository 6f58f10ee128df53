"""`make demo`'s SSO: the demo provider knows the demo people, and both sign-ins work with it."""

from __future__ import annotations

from io import StringIO
from typing import Any, ClassVar

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import TestCase, override_settings
from django.urls import reverse

from portal.demo import sso
from portal.demo.management.commands.seed_demo import STAFF, TENANTS
from tests.support.oidc_provider import OidcProvider


class DemoSsoTestCase(TestCase):
    issuer: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        demo = sso.running(sso.people(TENANTS, STAFF))
        issuer = demo.__enter__()
        cls.addClassCleanup(demo.__exit__, None, None, None)
        assert issuer is not None, "oidc-provider-mock is a development requirement"
        cls.issuer = issuer
        customers, staff = sso.settings_for(issuer)
        configured = override_settings(SSO_CUSTOMERS=customers, SSO_STAFF=staff)
        configured.enable()
        cls.addClassCleanup(configured.disable)
        super().setUpClass()

    @classmethod
    def setUpTestData(cls) -> None:
        call_command("seed_demo", stdout=StringIO())

    def sign_in(self, key: str, email: str) -> Any:
        start = self.client.get(reverse("sso_start", args=[key]))
        self.assertEqual(start.status_code, 302)
        provider = OidcProvider(port=int(self.issuer.rsplit(":", 1)[1]))
        return self.client.get(provider.approve(start["Location"], email))

    def test_it_offers_one_button_for_customers_and_one_for_staff(self) -> None:
        page = self.client.get(reverse("login")).content.decode()
        self.assertIn("Sign in with Demo SSO (customers)", page)
        self.assertIn("Sign in with Demo SSO (staff)", page)

    def test_it_signs_a_demo_customer_into_their_tenant(self) -> None:
        response = self.sign_in("customers", "alice@acme.example")
        self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)
        alice = User.objects.get(email="alice@acme.example")
        self.assertEqual(
            list(alice.memberships.values_list("tenant__external_id", flat=True)), [TENANTS[0].external_id]
        )

    def test_it_gives_a_demo_approver_the_approver_role_with_no_extra_code_step(self) -> None:
        response = self.sign_in("staff", "approver@provider.example")
        self.assertEqual(response.status_code, 302, response.content[:300])
        queue = self.client.get(response["Location"], follow=True)
        self.assertContains(queue, "Review queue")
        approver = User.objects.get(email="approver@provider.example")
        self.assertEqual(set(approver.groups.values_list("name", flat=True)), {"reviewer", "approver"})
