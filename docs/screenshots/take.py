"""Take the README's screenshots of the real UI with Chromium.

    .venv/bin/python docs/screenshots/take.py

Builds a throwaway SQLite database (in a temporary directory, removed afterwards) with the demo
data, runs the automated checks against the demo DNS server (as `make demo`'s worker would),
serves the portal on a free port and writes the PNGs next to this file. As the demo customer: the
request list, a request that needs information, and the new-request form showing an inline
error, on a laptop and on a phone. As the demo reviewer, at 1366 px and on a phone: the review
queue, a request's page (evidence beside the conversation and decision panel), the deny
confirmation with its message preview, and the audit log.

The network reputation page's screenshots (network-reputation.png and its phone version) need
90 days of listings that the demo data doesn't have; its browser test builds them and writes
the PNGs: `UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_network_page.py`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, FloatRect, Page, ViewportSize, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
CUSTOMER = "alice@acme.example"
REVIEWER = "reviewer@provider.example"
# The most common laptop screen, where the staff header must still fit on one line.
STAFF_LAPTOP: ViewportSize = {"width": 1366, "height": 900}
REVIEWED_ADDRESS = "198.51.100.70"  # Globex's demo request: failing checks, high risk, four-eyes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def demo_server(env: dict[str, str]) -> Iterator[str]:
    """Serve the portal from `env`'s database until the block ends; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/login/", timeout=1):  # noqa: S310 - our own server
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the development server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_vetting() -> None:
    """Vet the demo requests now, against the demo DNS, so that the pages show real checks."""
    from django.conf import settings

    from portal.demo.dnsserver import running
    from portal.demo.zone import DBL_ZONE, DNSBL_ZONE, demo_zone
    from portal.workflows.vetting import run_due_vetting

    with running(demo_zone()) as dns_port:
        settings.DNS_NAMESERVERS, settings.DNS_PORT = ["127.0.0.1"], dns_port
        settings.DNSBL_ZONE, settings.DBL_ZONE = DNSBL_ZONE, DBL_ZONE
        while run_due_vetting():
            pass


def signed_in_page(browser: Browser, url: str, viewport: ViewportSize, email: str, password: str) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda current: "/login/" not in current)
    return page


def show_form_error(page: Page, url: str) -> None:
    """A half-filled form submitted: the error summary at the top, every problem at once."""
    page.goto(f"{url}/requests/new/")
    page.get_by_label("Addresses").fill("203.0.113.9/29")
    page.get_by_label("Mail server software").fill("Postfix 3.8")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("[data-error-summary]")).to_be_focused()
    page.wait_for_timeout(400)  # let Pico's 0.2 s border-colour transition finish


def take_screenshots(url: str, password: str) -> list[Path]:
    written: list[Path] = []

    def shoot(page: Page, name: str, *, full_page: bool = True, down_to: str = "") -> None:
        """Screenshot the page, or with `down_to` the top of it down to that element's end."""
        clip: FloatRect | None = None
        if down_to:
            box = page.locator(down_to).bounding_box()
            assert box is not None
            assert page.viewport_size is not None
            bottom = box["y"] + box["height"] + 16
            clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": bottom}
        page.screenshot(path=OUT / name, full_page=full_page, clip=clip)
        written.append(OUT / name)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        laptop = signed_in_page(browser, url, LAPTOP, CUSTOMER, password)
        expect(laptop.get_by_role("heading", name="What needs you")).to_be_visible()
        shoot(laptop, "customer-home.png")
        laptop.goto(f"{url}/requests/")
        shoot(laptop, "request-list.png")
        laptop.get_by_role("row").filter(has_text="Needs information").get_by_role("link").click()
        expect(laptop.get_by_role("heading", name="A reviewer asked you a question")).to_be_visible()
        shoot(laptop, "request-detail.png")
        laptop.goto(f"{url}/requests/?state=denied")
        laptop.get_by_role("row").filter(has_text="Denied").get_by_role("link").first.click()
        expect(laptop.get_by_role("heading", name="Why this request was denied")).to_be_visible()
        shoot(laptop, "request-denied.png", full_page=False)
        show_form_error(laptop, url)
        shoot(laptop, "request-form.png", full_page=False)

        phone = signed_in_page(browser, url, PHONE, CUSTOMER, password)
        shoot(phone, "customer-home-phone.png", full_page=False)
        show_form_error(phone, url)
        shoot(phone, "request-form-phone.png", full_page=False)

        reviewer = signed_in_page(browser, url, STAFF_LAPTOP, REVIEWER, password)
        expect(reviewer.get_by_role("heading", name="Review queue")).to_be_visible()
        shoot(reviewer, "review-queue.png")
        reviewer.get_by_role("row").filter(has_text=REVIEWED_ADDRESS).get_by_role("link").first.click()
        expect(reviewer.get_by_role("heading", name="Automated checks")).to_be_visible()
        reviewed = reviewer.url
        # The first screenful: the evidence on the left, the conversation and the decision
        # panel (sticky as the reviewer scrolls) on the right.
        shoot(reviewer, "review-request.png", full_page=False)
        # Deny asks first, quoting the message the customer will get.
        reviewer.locator("#deny_canned").select_option(index=2)
        reviewer.locator("#deny_text").fill("Once the PTR record is in place we will gladly look again.")
        reviewer.get_by_role("button", name="Deny…").click()
        expect(reviewer.get_by_role("dialog")).to_be_visible()
        shoot(reviewer, "review-deny-confirm.png", full_page=False)
        reviewer.goto(f"{url}/review/audit/")
        shoot(reviewer, "audit-log.png", full_page=False)

        staff_phone = signed_in_page(browser, url, PHONE, REVIEWER, password)
        shoot(staff_phone, "review-queue-phone.png", full_page=False)
        staff_phone.goto(reviewed)
        shoot(staff_phone, "review-request-phone.png", full_page=False)
        staff_phone.goto(f"{url}/review/audit/")
        shoot(staff_phone, "audit-log-phone.png", full_page=False)

        browser.close()
    return written


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="portal-screenshots-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'portal.sqlite3'}", "DEBUG": "1"}
    os.environ.update(DATABASE_URL=env["DATABASE_URL"], DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    from portal.demo.management.commands.seed_demo import DEMO_PASSWORD

    try:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        run_vetting()
        with demo_server(env) as url:
            for path in take_screenshots(url, DEMO_PASSWORD):
                print(path.relative_to(ROOT))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
