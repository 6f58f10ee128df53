"""A live server plus a headless Chromium, for tests that need a real browser.

The live server serves static files, so htmx and the stylesheets load exactly as in production,
under the same Content-Security-Policy. Every console error (CSP violations included) and every
uncaught script error fails the test that caused it.
"""

from __future__ import annotations

import os
import unittest
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.core.servers.basehttp import WSGIServer
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    sync_playwright,
)

from portal.accounts.models import Membership, Tenant
from tests.base import PASSWORD, allocate, make_user
from tests.browser.axe import axe_violations

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Waits are for htmx round trips to a local server: seconds, not the 30 s Playwright default.
TIMEOUT_MS = 5_000


class SingleThreadedLiveServerThread(LiveServerThread):
    """Serve one request at a time.

    On SQLite the test database lives in memory and the server shares the test's one connection;
    htmx's overlapping requests on a threaded server would use it concurrently and fail.
    """

    def _create_server(
        self, connections_override: dict[str, BaseDatabaseWrapper] | None = None
    ) -> WSGIServer:
        return WSGIServer((self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=False)


@pytest.mark.browser
class BrowserTestCase(StaticLiveServerTestCase):
    server_thread_class = SingleThreadedLiveServerThread
    playwright: ClassVar[Playwright]
    browser: ClassVar[Browser]
    page: Page
    console_errors: list[str]
    acme: Tenant
    globex: Tenant
    alice: User
    bob: User
    rita: User
    ada: User

    @classmethod
    def setUpClass(cls) -> None:
        if not CHROMIUM.exists():
            reason = f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it"
            if os.environ.get("REQUIRE_BROWSER") == "1":
                raise RuntimeError(f"REQUIRE_BROWSER=1 but {reason}")
            raise unittest.SkipTest(reason)
        super().setUpClass()
        cls.playwright = sync_playwright().start()
        try:
            cls.browser = cls.playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except Exception:
            cls.playwright.stop()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.close()
        cls.playwright.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.create_cast()
        self.console_errors = []
        self.page = self.new_page()

    def new_page(self) -> Page:
        """A page in a browser context of its own (its own cookies: another person signs in there),
        watched for console errors like every other page of the test."""
        context = self.browser.new_context(
            base_url=self.live_server_url, viewport={"width": 1280, "height": 900}
        )
        self.addCleanup(context.close)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        return page

    def create_cast(self) -> None:
        """tests.base.PortalTestCase's cast, minus the admin (a live server can't use setUpTestData)."""
        self.acme = Tenant.objects.create(
            external_id="acme-1",
            name="Acme Ltd",
            account_opened_on=date(2025, 1, 1),
            identity_verified=True,
            paid_invoices=12,
        )
        self.globex = Tenant.objects.create(
            external_id="globex-2", name="Globex GmbH", account_opened_on=date(2026, 10, 1)
        )
        allocate(self.acme, "203.0.113.0/26")
        allocate(self.globex, "198.51.100.64/27")
        self.alice = make_user("alice@acme.example")
        self.bob = make_user("bob@globex.example")
        Membership.objects.create(user=self.alice, tenant=self.acme)
        Membership.objects.create(user=self.bob, tenant=self.globex)
        self.rita = make_user("rita@provider.example", "reviewer")
        self.ada = make_user("ada@provider.example", "reviewer", "approver")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def _on_page_error(self, error: Error) -> None:
        self.console_errors.append(f"uncaught: {error.message}")

    def assertNoAxeViolations(self, page: Page | None = None, where: str = "") -> None:
        """axe-core finds nothing on the page as it is now (at its current viewport)."""
        found = axe_violations(page or self.page)
        self.assertEqual(found, [], f"axe-core violations {where}".strip())

    def assertNoConsoleErrors(self) -> None:
        self.assertEqual(self.console_errors, [], "the page logged errors (CSP violations show up here)")

    def log_in(self, email: str, password: str = PASSWORD, *, page: Page | None = None) -> Page:
        """Sign in through the real login form, as a person would (on the test's page by default)."""
        page = page or self.page
        page.goto("/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login/" not in url)
        return page
