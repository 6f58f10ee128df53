"""Single sign-on in Chromium: a customer signs in at the provider and lands on their home; an
unknown tenant gets a clear page with a retry link. Each page passes axe-core."""

from __future__ import annotations

from typing import ClassVar

from django.test import override_settings

from portal.accounts.sso_tokens import clear_caches
from tests.accounts.test_sso import sso
from tests.browser.base import BrowserTestCase
from tests.support.oidc_provider import OidcProvider


class SsoInChromiumTestCase(BrowserTestCase):
    provider: ClassVar[OidcProvider]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.provider = OidcProvider.start()
        cls.addClassCleanup(cls.provider.stop)
        configured = override_settings(SSO_CUSTOMERS=sso(cls.provider, "portal-customers"))
        configured.enable()
        cls.addClassCleanup(configured.disable)

    def setUp(self) -> None:
        super().setUp()
        clear_caches()

    def sign_in_at_the_provider(self, subject: str) -> None:
        self.page.goto("/login/")
        self.assertNoAxeViolations(where="on the sign-in page")
        self.page.get_by_role("button", name="Sign in with Demo SSO").click()
        self.page.wait_for_url(f"{self.provider.issuer}/**")
        self.page.locator("#subject-input").fill(subject)
        self.page.get_by_role("button", name="Authorize", exact=True).click()
        self.page.wait_for_url(f"{self.live_server_url}/**")
        # The provider's own page asks a CDN for its stylesheet (no network here): not ours to judge.
        self.console_errors.clear()

    def test_it_signs_a_customer_in_through_the_provider(self) -> None:
        self.provider.set_user("carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        self.sign_in_at_the_provider("carol")
        self.page.wait_for_url(f"{self.live_server_url}/")
        self.assertIn("Acme Ltd", self.page.content())
        self.assertNoAxeViolations(where="on the customer's home after SSO")
        self.assertNoConsoleErrors()

    def test_it_explains_an_unknown_tenant_and_offers_a_retry(self) -> None:
        self.provider.set_user("dan", {"email": "dan@nowhere.example", "tenants": ["no-such-tenant"]})
        self.sign_in_at_the_provider("dan")
        self.assertIn("no-such-tenant", self.page.content())
        retry = self.page.get_by_role("button", name="Try signing in with Demo SSO again")
        self.assertTrue(retry.is_visible())
        self.assertNoAxeViolations(where="on the SSO error page")
        self.page.set_viewport_size({"width": 390, "height": 844})
        self.assertNoAxeViolations(where="on the SSO error page, phone width")
