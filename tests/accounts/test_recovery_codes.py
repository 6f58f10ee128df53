"""Recovery codes: shown once when two-factor is turned on, stored hashed, single use at the
code step, regenerated on demand, audited."""

from __future__ import annotations

import re

from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.models import AuditEvent
from tests.accounts.test_two_factor import TwoFactorTestCase, code_for, give_device

CODE = re.compile(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>")


class RecoveryCodesTestCase(TwoFactorTestCase):
    def turn_on(self) -> list[str]:
        self.client.force_login(self.alice)
        self.client.post("/account/two-factor/setup/")
        device = TOTPDevice.objects.get(user=self.alice)
        r = self.client.post("/account/two-factor/confirm/", {"token": code_for(device)})
        self.assertEqual(r["Cache-Control"], "no-store")
        return CODE.findall(r.content.decode())

    def test_it_shows_ten_codes_once_when_two_factor_is_turned_on(self) -> None:
        codes = self.turn_on()
        self.assertEqual(len(set(codes)), 10)
        page = self.client.get("/account/two-factor/").content.decode()
        self.assertEqual(CODE.findall(page), [])
        self.assertIn("You have <strong>10</strong> unused codes.", page)

    def test_it_stores_only_hashes(self) -> None:
        codes = self.turn_on()
        stored = set(StaticToken.objects.values_list("token", flat=True))
        self.assertEqual(len(stored), 10)
        for code in codes:
            self.assertNotIn(code, stored)
            self.assertNotIn(code.replace("-", ""), stored)

    def test_it_audits_issuing_codes_without_the_codes(self) -> None:
        codes = self.turn_on()
        event = AuditEvent.objects.get(action="two_factor.recovery_codes_issued")
        self.assertEqual((event.actor, event.after), (self.alice, {"codes": 10}))
        self.assertNotIn(codes[0], str(event.after))

    def test_a_code_signs_in_once_at_the_code_step(self) -> None:
        codes = self.turn_on()
        self.client.logout()
        self.sign_in("alice@acme.example")
        r = self.client.post("/login/two-factor/", {"token": codes[3].upper()})
        self.assertRedirects(r, "/", fetch_redirect_response=False)
        self.assertSignedIn(True)
        self.assertVerified(True)
        used = AuditEvent.objects.get(action="two_factor.recovery_code_used")
        self.assertEqual(used.after, {"codes_left": 9})

        self.client.logout()
        self.sign_in("alice@acme.example")
        r = self.client.post("/login/two-factor/", {"token": codes[3]})
        self.assertContains(r, "That recovery code is not right or was used before.")
        self.assertSignedIn(False)

    def test_it_refuses_a_made_up_code(self) -> None:
        self.turn_on()
        self.client.logout()
        self.sign_in("alice@acme.example")
        r = self.client.post("/login/two-factor/", {"token": "abcde-fghjk"})
        self.assertContains(r, "That recovery code is not right")
        self.assertSignedIn(False)

    def test_regenerating_replaces_every_code(self) -> None:
        old = self.turn_on()
        r = self.client.post("/account/two-factor/recovery-codes/")
        self.assertEqual(r["Cache-Control"], "no-store")
        new = CODE.findall(r.content.decode())
        self.assertEqual(len(new), 10)
        self.assertFalse(set(old) & set(new))
        self.assertEqual(AuditEvent.objects.filter(action="two_factor.recovery_codes_issued").count(), 2)
        self.client.logout()
        self.sign_in("alice@acme.example")
        self.assertRedirects(
            self.client.post("/login/two-factor/", {"token": new[0]}), "/", fetch_redirect_response=False
        )
        self.client.logout()
        self.sign_in("alice@acme.example")
        self.assertContains(self.client.post("/login/two-factor/", {"token": old[0]}), "not right")

    def test_regenerating_needs_two_factor_on(self) -> None:
        self.client.force_login(self.alice)
        r = self.client.post("/account/two-factor/recovery-codes/")
        self.assertRedirects(r, "/account/two-factor/", fetch_redirect_response=False)
        self.assertFalse(StaticToken.objects.exists())

    def test_regenerating_needs_a_session_that_passed_the_code_step(self) -> None:
        # A session signed in without the code step (SSO, say) must not mint a second factor.
        give_device(self.alice)
        self.client.force_login(self.alice)
        r = self.client.post("/account/two-factor/recovery-codes/")
        self.assertRedirects(r, "/account/two-factor/", fetch_redirect_response=False)
        self.assertFalse(StaticToken.objects.exists())

    def test_regenerating_is_a_post(self) -> None:
        self.client.force_login(self.alice)
        give_device(self.alice)
        self.assertEqual(self.client.get("/account/two-factor/recovery-codes/").status_code, 405)

    def test_turning_two_factor_off_deletes_the_codes(self) -> None:
        self.turn_on()
        device = TOTPDevice.objects.get(user=self.alice)
        # The enrolment used the current code; the device also takes the next one.
        self.client.post("/account/two-factor/disable/", {"token": f"{totp(device.bin_key, t0=-30):06d}"})
        self.assertFalse(TOTPDevice.objects.filter(user=self.alice).exists())
        self.assertFalse(StaticToken.objects.exists())
