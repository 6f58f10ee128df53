"""With DEBUG off the portal refuses unsafe settings and sends the security headers; no page
needs inline code that the Content-Security-Policy would block.

Settings are computed once, at import, from the environment; so each case starts a fresh Python.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

from portal.unblock.models import State
from tests.base import PortalTestCase

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k" * 20 + "-this-is-a-long-enough-random-production-secret-key"

SETUP = "import django; django.setup()"

REQUEST = """
import json, django
django.setup()
from django.test import Client
client = Client()
plain = client.get("/healthz", headers={"host": "portal.example.net"})
secure = client.get("/healthz", secure=True, headers={"host": "portal.example.net"})
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location", "")],
    "status": secure.status_code,
    "headers": dict(secure.headers),
    "other_host": client.get("/healthz", secure=True, headers={"host": "evil.example"}).status_code,
}))
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class ProductionSettingsTestCase(SimpleTestCase):
    def test_it_refuses_to_start_without_a_secret_key(self) -> None:
        result = run(SETUP, DEBUG="0", ALLOWED_HOSTS="portal.example.net")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "SECRET_KEY must be set to a random string of 50 or more characters when DEBUG is off",
            result.stderr,
        )

    def test_it_refuses_a_short_secret_key(self) -> None:
        result = run(SETUP, DEBUG="0", SECRET_KEY="short", ALLOWED_HOSTS="portal.example.net")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SECRET_KEY must be set", result.stderr)

    def test_it_refuses_to_start_without_allowed_hosts(self) -> None:
        result = run(SETUP, DEBUG="0", SECRET_KEY=GOOD_SECRET)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            "ALLOWED_HOSTS must list the host names the portal is served under when DEBUG is off",
            result.stderr,
        )
        self.assertNotIn("SECRET_KEY must be set", result.stderr)

    def test_it_sends_security_headers_in_production(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(
                REQUEST,
                DEBUG="0",
                SECRET_KEY=GOOD_SECRET,
                ALLOWED_HOSTS="portal.example.net",
                DATABASE_URL=f"sqlite:///{tmp}/portal.sqlite3",
                LOG_LEVEL="ERROR",
            )
        self.assertEqual(result.returncode, 0, result.stderr)
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(seen["plain"], [301, "https://portal.example.net/healthz"])
        # 503: no worker has sent a heartbeat in this throwaway database; the headers are what matter.
        self.assertIn(seen["status"], (200, 503))
        self.assertEqual(seen["other_host"], 400)
        headers = seen["headers"]
        self.assertEqual(headers["Strict-Transport-Security"], "max-age=31536000; includeSubDomains")
        csp = dict(
            directive.partition(" ")[::2] for directive in headers["Content-Security-Policy"].split("; ")
        )
        self.assertEqual(csp["script-src"], "'self'")
        self.assertEqual(csp["default-src"], "'self'")
        self.assertEqual(csp["frame-ancestors"], "'none'")
        self.assertNotIn("unsafe-inline", headers["Content-Security-Policy"])
        self.assertNotIn("unsafe-eval", headers["Content-Security-Policy"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["X-Frame-Options"], "DENY")
        self.assertEqual(headers["Referrer-Policy"], "same-origin")

    def test_it_starts_in_development_without_any_settings(self) -> None:
        result = run(SETUP)
        self.assertEqual(result.returncode, 0, result.stderr)


class NoInlineCodeTestCase(PortalTestCase):
    """The CSP allows no inline script or style, so the pages must not need any."""

    INLINE = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|\sstyle=|\son[a-z]+=|\shx-on", re.IGNORECASE)

    def test_it_serves_pages_without_inline_script_or_style(self) -> None:
        req = self.make_request(self.acme, state=State.DRAFT)
        self.client.force_login(self.alice)
        for url in (
            "/requests/",
            "/requests/new/",
            f"/requests/{req.id}/",
            f"/requests/{req.id}/edit/",
            "/keys/",
        ):
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertEqual(r.status_code, 200)
                self.assertIn("script-src 'self'", r["Content-Security-Policy"])
                self.assertEqual(self.INLINE.findall(r.content.decode()), [])
        self.client.logout()
        r = self.client.get("/healthz")
        self.assertEqual(self.INLINE.findall(r.content.decode()), [])
