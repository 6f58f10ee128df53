"""Signing in: brute-force lockout per account and address, and the password reset email."""

from __future__ import annotations

import re

from django.conf import settings
from django.core import mail
from django.http import HttpResponseBase

from tests.base import PASSWORD, PortalTestCase


class LoginTestCase(PortalTestCase):
    def sign_in(self, email: str, password: str, address: str = "192.0.2.200") -> HttpResponseBase:
        return self.client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=address)

    def assertSignedIn(self, who: str | None) -> None:
        r = self.client.get("/keys/")
        if who is None:
            self.assertEqual(r.status_code, 302)
        else:
            self.assertContains(r, who)

    def test_it_signs_in_with_the_right_password(self) -> None:
        r = self.sign_in("alice@acme.example", PASSWORD)
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertSignedIn("alice@acme.example")

    def test_it_refuses_a_wrong_password(self) -> None:
        r = self.sign_in("alice@acme.example", "wrong")
        self.assertContains(r, "That email and password don&#x27;t match an account.")
        self.assertNotContains(r, "correct username")
        self.assertSignedIn(None)

    def test_it_allows_failures_below_the_limit(self) -> None:
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            self.sign_in("alice@acme.example", "wrong")
        r = self.sign_in("alice@acme.example", PASSWORD)
        self.assertRedirects(r, "/", fetch_redirect_response=False)

    def test_it_locks_the_account_out_after_too_many_failures(self) -> None:
        self.assertEqual(settings.AXES_FAILURE_LIMIT, 5)
        for _ in range(5):
            self.sign_in("alice@acme.example", "wrong")
        r = self.sign_in("alice@acme.example", PASSWORD)
        self.assertContains(r, "Too many failed sign-in attempts", status_code=429)
        self.assertSignedIn(None)

    def test_it_does_not_lock_out_other_users(self) -> None:
        for _ in range(6):
            self.sign_in("alice@acme.example", "wrong")
        r = self.sign_in("bob@globex.example", PASSWORD)
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertSignedIn("bob@globex.example")

    def test_it_does_not_lock_out_the_same_user_from_another_address(self) -> None:
        for _ in range(6):
            self.sign_in("alice@acme.example", "wrong", address="192.0.2.200")
        r = self.sign_in("alice@acme.example", PASSWORD, address="192.0.2.201")
        self.assertRedirects(r, "/", fetch_redirect_response=False)


class PasswordResetTestCase(PortalTestCase):
    def test_it_emails_a_link_that_sets_a_new_password(self) -> None:
        r = self.client.post("/password_reset/", {"email": "alice@acme.example"})
        self.assertRedirects(r, "/password_reset/done/", fetch_redirect_response=False)
        self.assertEqual(len(mail.outbox), 1)
        message = mail.outbox[0]
        self.assertEqual(message.to, ["alice@acme.example"])
        match = re.search(r"https?://testserver(/reset/\S+/)", str(message.body))
        assert match is not None, message.body

        r = self.client.get(match.group(1), follow=True)
        self.assertContains(r, 'name="new_password1"')
        r = self.client.post(
            r.redirect_chain[-1][0],
            {"new_password1": "a-brand-new-password-25", "new_password2": "a-brand-new-password-25"},
        )
        self.assertRedirects(r, "/reset/done/", fetch_redirect_response=False)
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.check_password("a-brand-new-password-25"))
        r = self.client.post("/login/", {"username": "alice@acme.example", "password": PASSWORD})
        self.assertEqual(r.status_code, 200)
        r = self.client.post(
            "/login/", {"username": "alice@acme.example", "password": "a-brand-new-password-25"}
        )
        self.assertRedirects(r, "/", fetch_redirect_response=False)

    def test_it_says_the_same_and_sends_nothing_for_an_unknown_address(self) -> None:
        r = self.client.post("/password_reset/", {"email": "nobody@example.com"})
        self.assertRedirects(r, "/password_reset/done/", fetch_redirect_response=False)
        self.assertEqual(len(mail.outbox), 0)
