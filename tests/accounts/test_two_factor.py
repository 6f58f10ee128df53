"""Two-factor authentication: setting up an authenticator app, the code step at sign-in, turning it
off, and REQUIRE_STAFF_2FA. Codes are computed from the device's real secret."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpResponseBase
from django.test import override_settings
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.two_factor import PENDING_SIGN_IN_KEY, PENDING_SIGN_IN_SECONDS
from portal.audit.models import AuditEvent
from tests.base import PASSWORD, PortalTestCase


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key):06d}"


def wrong_code_for(device: TOTPDevice) -> str:
    # Not the code of the current step nor of the steps either side that the device tolerates.
    valid = {totp(device.bin_key, t0=offset) for offset in (-30, 0, 30)}
    return next(f"{n:06d}" for n in range(1_000_000) if n not in valid)


def give_device(user: User) -> TOTPDevice:
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return device


class TwoFactorTestCase(PortalTestCase):
    def sign_in(self, email: str, password: str = PASSWORD, **extra: str) -> HttpResponseBase:
        return self.client.post("/login/", {"username": email, "password": password, **extra})

    def assertSignedIn(self, signed_in: bool) -> None:
        self.assertEqual("_auth_user_id" in self.client.session, signed_in)

    def assertVerified(self, verified: bool) -> None:
        self.assertEqual(DEVICE_ID_SESSION_KEY in self.client.session, verified)


class EnrolmentTestCase(TwoFactorTestCase):
    def test_it_is_linked_from_the_header(self) -> None:
        self.client.force_login(self.alice)
        r = self.client.get("/requests/")
        self.assertContains(r, 'href="/account/two-factor/"')

    def test_it_shows_a_qr_code_the_secret_and_the_setup_link(self) -> None:
        self.client.force_login(self.alice)
        r = self.client.post("/account/two-factor/setup/")
        self.assertRedirects(r, "/account/two-factor/", fetch_redirect_response=False)
        device = TOTPDevice.objects.get(user=self.alice)
        self.assertFalse(device.confirmed)

        r = self.client.get("/account/two-factor/")
        self.assertContains(r, 'src="data:image/svg+xml;base64,')
        self.assertContains(r, "otpauth://totp/")
        self.assertContains(r, "issuer=Egress%20Exemption%20Portal")
        secret = r.context["secret"]
        self.assertEqual(len(secret.replace(" ", "")), 32)
        self.assertContains(r, secret)
        self.assertEqual(r["Cache-Control"], "no-store")
        # The Content-Security-Policy allows no inline style or script.
        self.assertNotRegex(r.content.decode(), r"<script(?![^>]*\ssrc=)|\sstyle=")

    def test_it_turns_on_with_a_right_code(self) -> None:
        self.client.force_login(self.alice)
        self.client.post("/account/two-factor/setup/")
        device = TOTPDevice.objects.get(user=self.alice)

        r = self.client.post("/account/two-factor/confirm/", {"token": code_for(device)})
        self.assertTemplateUsed(r, "accounts/recovery_codes.html")
        self.assertContains(r, 'href="/account/two-factor/">I have saved my codes</a>')
        device.refresh_from_db()
        self.assertTrue(device.confirmed)
        self.assertVerified(True)
        event = AuditEvent.objects.get(action="two_factor.enabled")
        self.assertEqual(event.actor, self.alice)
        self.assertEqual(event.object_id, str(self.alice.pk))

    def test_it_refuses_a_wrong_code(self) -> None:
        self.client.force_login(self.alice)
        self.client.post("/account/two-factor/setup/")
        device = TOTPDevice.objects.get(user=self.alice)

        r = self.client.post("/account/two-factor/confirm/", {"token": wrong_code_for(device)})
        self.assertContains(r, "That code is not right.")
        self.assertContains(r, 'src="data:image/svg+xml;base64,')
        device.refresh_from_db()
        self.assertFalse(device.confirmed)
        self.assertFalse(AuditEvent.objects.filter(action="two_factor.enabled").exists())

    def test_starting_again_replaces_the_secret(self) -> None:
        self.client.force_login(self.alice)
        self.client.post("/account/two-factor/setup/")
        first = TOTPDevice.objects.get(user=self.alice)
        self.client.post("/account/two-factor/setup/")
        second = TOTPDevice.objects.get(user=self.alice)
        self.assertNotEqual(first.key, second.key)

    def test_it_turns_off_with_a_current_code(self) -> None:
        device = give_device(self.alice)
        self.client.force_login(self.alice)
        r = self.client.get("/account/two-factor/")
        self.assertContains(r, "Turn off two-factor authentication")

        r = self.client.post("/account/two-factor/disable/", {"token": code_for(device)})
        self.assertRedirects(r, "/account/two-factor/", fetch_redirect_response=False)
        self.assertFalse(TOTPDevice.objects.filter(user=self.alice).exists())
        event = AuditEvent.objects.get(action="two_factor.disabled")
        self.assertEqual(event.actor, self.alice)
        self.assertEqual(event.object_id, str(self.alice.pk))

        self.client.logout()
        self.assertRedirects(self.sign_in("alice@acme.example"), "/", fetch_redirect_response=False)
        self.assertSignedIn(True)

    def test_it_stays_on_after_a_wrong_code(self) -> None:
        device = give_device(self.alice)
        self.client.force_login(self.alice)
        r = self.client.post("/account/two-factor/disable/", {"token": wrong_code_for(device)})
        self.assertContains(r, "That code is not right.")
        self.assertTrue(TOTPDevice.objects.filter(user=self.alice, confirmed=True).exists())
        self.assertFalse(AuditEvent.objects.filter(action="two_factor.disabled").exists())

    def test_it_needs_a_signed_in_user(self) -> None:
        r = self.client.get("/account/two-factor/")
        self.assertRedirects(r, "/login/?next=/account/two-factor/", fetch_redirect_response=False)


class SignInTestCase(TwoFactorTestCase):
    def test_it_asks_for_a_code_before_signing_in(self) -> None:
        device = give_device(self.alice)
        r = self.sign_in("alice@acme.example")
        self.assertRedirects(r, "/login/two-factor/", fetch_redirect_response=False)
        self.assertSignedIn(False)
        self.assertEqual(self.client.get("/requests/").status_code, 302)

        r = self.client.get("/login/two-factor/")
        self.assertContains(r, 'autocomplete="one-time-code"')
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertSignedIn(True)
        self.assertVerified(True)
        self.assertNotIn(PENDING_SIGN_IN_KEY, self.client.session)

    def test_it_does_not_sign_in_with_a_wrong_code(self) -> None:
        device = give_device(self.alice)
        self.sign_in("alice@acme.example")
        r = self.client.post("/login/two-factor/", {"token": wrong_code_for(device)})
        self.assertContains(r, "That code is not right.")
        self.assertSignedIn(False)

    def test_the_code_step_needs_the_password_step(self) -> None:
        device = give_device(self.alice)
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertRedirects(r, "/login/", fetch_redirect_response=False)
        self.assertSignedIn(False)

    def test_it_goes_on_to_the_page_asked_for(self) -> None:
        device = give_device(self.rita)
        self.sign_in("rita@provider.example", next="/review/audit/")
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertRedirects(r, "/review/audit/", fetch_redirect_response=False)

    def test_the_code_step_times_out(self) -> None:
        device = give_device(self.alice)
        self.sign_in("alice@acme.example")
        session = self.client.session
        session[PENDING_SIGN_IN_KEY]["started"] -= PENDING_SIGN_IN_SECONDS + 1
        session.save()
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertRedirects(r, "/login/", fetch_redirect_response=False)
        self.assertSignedIn(False)

    def test_a_wrong_code_counts_against_the_device(self) -> None:
        self.assertGreater(settings.OTP_TOTP_THROTTLE_FACTOR, 0)
        device = give_device(self.alice)
        self.sign_in("alice@acme.example")
        self.client.post("/login/two-factor/", {"token": wrong_code_for(device)})
        device.refresh_from_db()
        self.assertEqual(device.throttling_failure_count, 1)

    def test_a_device_with_many_wrong_codes_refuses_even_the_right_one(self) -> None:
        device = give_device(self.alice)
        TOTPDevice.objects.filter(pk=device.pk).update(
            throttling_failure_count=10, throttling_failure_timestamp=timezone.now()
        )
        self.sign_in("alice@acme.example")
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertContains(r, "Too many wrong codes")
        self.assertSignedIn(False)

    def test_wrong_passwords_still_lock_the_account_out(self) -> None:
        give_device(self.alice)
        for _ in range(settings.AXES_FAILURE_LIMIT):
            self.sign_in("alice@acme.example", "wrong")
        r = self.sign_in("alice@acme.example")
        self.assertContains(r, "Too many failed sign-in attempts", status_code=429)
        self.assertNotIn(PENDING_SIGN_IN_KEY, self.client.session)

    def test_accounts_without_a_device_sign_in_with_the_password(self) -> None:
        r = self.sign_in("alice@acme.example")
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertSignedIn(True)
        self.assertVerified(False)

    def test_the_admin_login_cannot_skip_the_code_step(self) -> None:
        give_device(self.root)
        r = self.client.get("/admin/login/?next=/admin/")
        self.assertRedirects(r, "/login/?next=/admin/", fetch_redirect_response=False)
        self.client.post("/admin/login/", {"username": "root@provider.example", "password": PASSWORD})
        self.assertSignedIn(False)


class MandatoryForStaffTestCase(TwoFactorTestCase):
    def test_it_is_off_by_default(self) -> None:
        self.assertFalse(settings.REQUIRE_STAFF_2FA)
        self.client.force_login(self.rita)
        self.assertEqual(self.client.get("/review/audit/").status_code, 200)

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_sends_a_reviewer_without_a_device_to_set_one_up(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.get("/review/")
        self.assertRedirects(r, "/account/two-factor/?next=%2Freview%2F", fetch_redirect_response=False)
        r = self.client.get(r["Location"])
        self.assertContains(r, "Staff accounts need two-factor authentication: set it up")

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_setting_up_leads_back_to_the_staff_page(self) -> None:
        self.client.force_login(self.rita)
        self.client.post("/account/two-factor/setup/", {"next": "/review/"})
        device = TOTPDevice.objects.get(user=self.rita)
        r = self.client.post("/account/two-factor/confirm/", {"token": code_for(device), "next": "/review/"})
        self.assertContains(r, 'href="/review/">I have saved my codes</a>')
        self.assertEqual(self.client.get("/review/").status_code, 200)

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_lets_a_verified_reviewer_in(self) -> None:
        device = give_device(self.rita)
        self.sign_in("rita@provider.example")
        self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertEqual(self.client.get("/review/").status_code, 200)

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_asks_an_unverified_session_for_a_code(self) -> None:
        device = give_device(self.ada)
        self.client.force_login(self.ada)
        r = self.client.get("/review/audit/")
        self.assertRedirects(r, "/login/two-factor/?next=%2Freview%2Faudit%2F", fetch_redirect_response=False)
        r = self.client.post("/login/two-factor/", {"token": code_for(device), "next": "/review/audit/"})
        self.assertRedirects(r, "/review/audit/", fetch_redirect_response=False)
        self.assertEqual(self.client.get("/review/audit/").status_code, 200)

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_covers_the_admin(self) -> None:
        self.client.force_login(self.root)
        r = self.client.get("/admin/", follow=True)
        self.assertEqual(r.redirect_chain[-1][0], "/account/two-factor/?next=%2Fadmin%2F")

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_lets_a_verified_admin_into_the_admin(self) -> None:
        device = give_device(self.root)
        self.sign_in("root@provider.example", next="/admin/otp_totp/totpdevice/")
        r = self.client.post("/login/two-factor/", {"token": code_for(device)})
        self.assertRedirects(r, "/admin/otp_totp/totpdevice/", fetch_redirect_response=False)
        r = self.client.get("/admin/otp_totp/totpdevice/")
        self.assertContains(r, "root@provider.example")

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_it_leaves_customers_alone(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/requests/").status_code, 200)
        r = self.client.get("/account/two-factor/")
        self.assertNotContains(r, "Staff accounts")

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_non_staff_still_get_404(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/review/").status_code, 404)

    @override_settings(REQUIRE_STAFF_2FA=True)
    def test_anonymous_users_still_go_to_the_login_page(self) -> None:
        r = self.client.get("/review/")
        self.assertRedirects(r, "/login/?next=/review/", fetch_redirect_response=False)
