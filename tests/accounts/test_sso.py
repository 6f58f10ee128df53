"""Single sign-on against a real OpenID Connect provider process (oidc-provider-mock) on loopback."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse

from portal.accounts.models import Membership, SsoIdentity, roles_of
from portal.accounts.sso_tokens import clear_caches
from portal.audit.models import AuditEvent
from tests.accounts.test_two_factor import give_device
from tests.base import PASSWORD, PortalTestCase
from tests.support.oidc_provider import OidcProvider


def sso(provider: OidcProvider, client_id: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "issuer": provider.issuer,
        "name": "Demo SSO",
        "client_id": client_id,
        "client_secret": "not-checked-by-the-mock",
        "scopes": "openid email profile",
        "email_claim": "email",
        "tenant_claim": "tenants",
        "groups_claim": "groups",
        "role_map": {"abuse-reviewers": "reviewer", "abuse-approvers": "approver", "portal-admins": "admin"},
        "require_mfa": False,
        "mfa_amr": ["mfa"],
        "mfa_acr": [],
    }
    config.update(extra)
    return config


class SsoTestCase(PortalTestCase):
    provider: ClassVar[OidcProvider]
    provider_args: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def setUpClass(cls) -> None:
        cls.provider = OidcProvider.start(*cls.provider_args)
        cls.addClassCleanup(cls.provider.stop)
        configured = override_settings(
            SSO_CUSTOMERS=sso(cls.provider, "portal-customers"),
            SSO_STAFF=sso(cls.provider, "portal-staff", name="Company SSO", require_mfa=True),
        )
        configured.enable()
        cls.addClassCleanup(configured.disable)
        super().setUpClass()

    def setUp(self) -> None:
        clear_caches()

    def sign_in(self, key: str, sub: str, claims: dict[str, Any] | None = None, next_url: str = "") -> Any:
        """Start at the portal, approve at the provider as `sub`, follow the answer back."""
        if claims is not None:
            self.provider.set_user(sub, claims)
        start = reverse("sso_start", args=[key]) + (f"?next={next_url}" if next_url else "")
        response = self.client.get(start)
        self.assertEqual(response.status_code, 302)
        callback = self.provider.approve(response["Location"], sub)
        return self.client.get(callback)

    def signed_in_user(self) -> User | None:
        user_id = self.client.session.get("_auth_user_id")
        return User.objects.filter(pk=user_id).first() if user_id else None


class CustomerSignInTest(SsoTestCase):
    def test_it_offers_a_button_for_each_configured_issuer(self) -> None:
        page = self.client.get(reverse("login")).content.decode()
        self.assertIn("Sign in with Demo SSO", page)
        self.assertIn("Sign in with Company SSO", page)

    def test_it_asks_the_provider_with_state_nonce_and_pkce(self) -> None:
        location = self.client.get(reverse("sso_start", args=["customers"]))["Location"]
        query = parse_qs(urlsplit(location).query)
        self.assertTrue(location.startswith(self.provider.issuer))
        self.assertEqual(query["code_challenge_method"], ["S256"])
        self.assertTrue(query["state"][0] and query["nonce"][0] and query["code_challenge"][0])

    def test_it_makes_a_customer_a_member_of_both_tenants_in_the_claim(self) -> None:
        claims = {"email": "carol@acme.example", "tenants": ["acme-1", "globex-2"]}
        response = self.sign_in("customers", "carol", claims)
        self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)
        carol = User.objects.get(email="carol@acme.example")
        self.assertEqual(self.signed_in_user(), carol)
        self.assertFalse(carol.has_usable_password())
        tenants = set(Membership.objects.filter(user=carol).values_list("tenant__external_id", flat=True))
        self.assertEqual(tenants, {"acme-1", "globex-2"})
        self.assertEqual(
            AuditEvent.objects.filter(action="membership.added", object_id=str(carol.pk)).count(), 2
        )
        self.assertTrue(SsoIdentity.objects.filter(user=carol, subject="carol").exists())

    def test_it_removes_a_tenant_the_claim_no_longer_names(self) -> None:
        self.sign_in("customers", "carol", {"email": "carol@acme.example", "tenants": ["acme-1", "globex-2"]})
        self.client.post(reverse("logout"))
        self.sign_in("customers", "carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        carol = User.objects.get(email="carol@acme.example")
        self.assertEqual(list(carol.memberships.values_list("tenant__external_id", flat=True)), ["acme-1"])
        removed = AuditEvent.objects.get(action="membership.removed", object_id=str(carol.pk))
        self.assertEqual(removed.tenant_id, self.globex.pk)

    def test_it_links_an_existing_account_by_a_verified_email(self) -> None:
        claims = {"email": "alice@acme.example", "email_verified": True, "tenants": ["acme-1"]}
        self.sign_in("customers", "alice-sub", claims)
        self.assertEqual(self.signed_in_user(), self.alice)

    def test_it_does_not_link_an_existing_account_by_an_email_the_issuer_did_not_verify(self) -> None:
        self.sign_in("customers", "alice-sub", {"email": "alice@acme.example", "tenants": ["acme-1"]})
        self.assertIsNone(self.signed_in_user())
        self.assertFalse(SsoIdentity.objects.filter(user=self.alice).exists())

    def test_it_never_hands_a_staff_account_to_a_customer_sign_in(self) -> None:
        # A customer names a reviewer's email for a user in the provider's console.
        claims = {"email": "rita@provider.example", "email_verified": True, "tenants": ["acme-1"]}
        self.sign_in("customers", "mallory", claims)
        self.assertIsNone(self.signed_in_user())
        self.assertFalse(SsoIdentity.objects.filter(user=self.rita).exists())
        self.assertFalse(Membership.objects.filter(user=self.rita).exists())

    def test_it_asks_a_customer_who_turned_on_the_portals_second_factor_for_a_code(self) -> None:
        give_device(self.alice)
        claims = {"email": "alice@acme.example", "email_verified": True, "tenants": ["acme-1"]}
        response = self.sign_in("customers", "alice-sub", claims)
        self.assertRedirects(response, reverse("two_factor_verify"), fetch_redirect_response=False)
        self.assertIsNone(self.signed_in_user())

    def test_it_refuses_an_unknown_tenant_and_makes_no_account(self) -> None:
        claims = {"email": "mallory@nowhere.example", "tenants": ["acme-1", "initech-9"]}
        response = self.sign_in("customers", "mallory", claims)
        self.assertContains(response, "initech-9", status_code=403)
        self.assertContains(response, "not known here", status_code=403)
        self.assertContains(response, reverse("sso_start", args=["customers"]), status_code=403)
        self.assertFalse(User.objects.filter(email="mallory@nowhere.example").exists())
        self.assertIsNone(self.signed_in_user())

    def test_it_refuses_a_tampered_state(self) -> None:
        self.provider.set_user("carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        location = self.client.get(reverse("sso_start", args=["customers"]))["Location"]
        callback = self.provider.approve(location, "carol")
        response = self.client.get(callback.replace("state=", "state=x"))
        self.assertContains(response, "was not started here", status_code=400)
        self.assertIsNone(self.signed_in_user())
        # The real state was spent by the refused attempt? No: it was never presented; it still works once.
        self.assertEqual(self.client.get(callback).status_code, 302)
        self.assertEqual(self.client.get(callback).status_code, 400)

    def test_it_refuses_an_answer_meant_for_the_other_configuration(self) -> None:
        self.provider.set_user("carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        location = self.client.get(reverse("sso_start", args=["customers"]))["Location"]
        callback = self.provider.approve(location, "carol")
        staff_callback = callback.replace("/sso/customers/", "/sso/staff/")
        self.assertContains(self.client.get(staff_callback), "was not started here", status_code=400)

    def test_it_ignores_a_next_url_on_another_site(self) -> None:
        claims = {"email": "carol@acme.example", "tenants": ["acme-1"]}
        response = self.sign_in("customers", "carol", claims, next_url="https://evil.example/")
        self.assertEqual(response["Location"], reverse("home"))

    def test_it_follows_a_next_url_on_this_site(self) -> None:
        claims = {"email": "carol@acme.example", "tenants": ["acme-1"]}
        response = self.sign_in("customers", "carol", claims, next_url="/requests/")
        self.assertEqual(response["Location"], "/requests/")

    def test_it_shows_a_provider_error_with_a_retry_link(self) -> None:
        location = self.client.get(reverse("sso_start", args=["customers"]))["Location"]
        response = self.client.get(self.provider.deny(location))
        self.assertContains(response, "did not sign you in", status_code=400)
        self.assertContains(response, "It said:", status_code=400)
        self.assertContains(response, "Try signing in with Demo SSO again", status_code=400)

    @override_settings(SSO_JWKS_MIN_REFETCH_SECONDS=0)
    def test_it_accepts_a_rotated_signing_key(self) -> None:
        claims = {"email": "carol@acme.example", "tenants": ["acme-1"]}
        self.sign_in("customers", "carol", claims)
        self.client.post(reverse("logout"))
        self.provider.restart()  # a new process signs with a new key under a new key id
        # Keys stay cached (no clear_caches()): the unknown key id makes the refetch.
        response = self.sign_in("customers", "carol", claims)
        self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)

    def test_it_ends_the_session_at_the_issuer_on_logout(self) -> None:
        self.sign_in("customers", "carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        response = self.client.post(reverse("logout"))
        self.assertTrue(response["Location"].startswith(f"{self.provider.issuer}/oauth2/end_session?"))
        self.assertIn("id_token_hint=", response["Location"])
        self.assertIsNone(self.signed_in_user())


class StaffSignInTest(SsoTestCase):
    def test_it_makes_a_staff_member_an_approver_from_their_group(self) -> None:
        claims = {
            "email": "sam@provider.example",
            "groups": ["abuse-approvers", "lunch"],
            "amr": ["pwd", "mfa"],
        }
        response = self.sign_in("staff", "sam", claims)
        self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)
        sam = User.objects.get(email="sam@provider.example")
        self.assertEqual(roles_of(sam), {"approver"})
        self.assertEqual(self.client.get(reverse("staff:home")).status_code, 200)
        self.assertTrue(AuditEvent.objects.filter(action="staff_role.added", object_id=str(sam.pk)).exists())

    def test_it_takes_away_a_role_the_groups_no_longer_give(self) -> None:
        self.sign_in(
            "staff",
            "ada-sub",
            {"email": "ada@provider.example", "groups": ["abuse-reviewers"], "amr": ["mfa"]},
        )
        self.ada.refresh_from_db()
        self.assertEqual(set(self.ada.groups.values_list("name", flat=True)), {"reviewer"})
        self.assertTrue(
            AuditEvent.objects.filter(action="staff_role.removed", object_id=str(self.ada.pk)).exists()
        )

    def test_it_refuses_staff_without_a_mapped_group(self) -> None:
        response = self.sign_in(
            "staff", "eve", {"email": "eve@provider.example", "groups": ["lunch"], "amr": ["mfa"]}
        )
        self.assertContains(response, "No staff role", status_code=403)
        self.assertFalse(User.objects.filter(email="eve@provider.example").exists())

    def test_it_sends_staff_without_mfa_in_amr_to_the_portals_own_second_factor(self) -> None:
        claims = {"email": "sam@provider.example", "groups": ["abuse-reviewers"], "amr": ["pwd"]}
        self.sign_in("staff", "sam", claims)
        response = self.client.get(reverse("staff:home"))
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith(reverse("two_factor")))

    def test_it_bounds_a_staff_session_by_the_id_token_expiry(self) -> None:
        self.sign_in(
            "staff", "sam", {"email": "sam@provider.example", "groups": ["abuse-reviewers"], "amr": ["mfa"]}
        )
        # The mock's tokens live an hour; Django's default session two weeks.
        self.assertLess(self.client.session.get_expiry_age(), 3601)


@override_settings(SSO_CLOCK_SKEW_SECONDS=60)
class ExpiredTokenTest(SsoTestCase):
    provider_args = ("--token-max-age", "-300")  # issued already expired, beyond the clock skew

    def test_it_refuses_an_expired_id_token(self) -> None:
        response = self.sign_in("customers", "carol", {"email": "carol@acme.example", "tenants": ["acme-1"]})
        self.assertContains(response, "expired", status_code=400)
        self.assertIsNone(self.signed_in_user())
        self.assertFalse(User.objects.filter(email="carol@acme.example").exists())


class LocalLoginOffTest(SsoTestCase):
    @override_settings(LOCAL_LOGIN=False, BREAK_GLASS_ADMIN="root@provider.example")
    def test_it_refuses_passwords_except_for_the_break_glass_admin(self) -> None:
        refused = self.client.post(reverse("login"), {"username": "alice@acme.example", "password": PASSWORD})
        self.assertContains(refused, "Passwords are turned off")
        self.assertIsNone(self.signed_in_user())
        self.client.post(reverse("login"), {"username": "root@provider.example", "password": PASSWORD})
        self.assertEqual(self.signed_in_user(), self.root)
