"""API keys: shown once, stored only as a keyed hash, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
from io import StringIO

from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from portal.accounts.models import ApiKey, Scope
from portal.audit.models import AuditEvent
from tests.base import PortalTestCase

KEY = re.compile(r"eep_[0-9a-f]{12}[A-Za-z0-9_-]{43}")


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


class ApiKeyModelTestCase(PortalTestCase):
    def test_it_stores_only_the_lookup_and_a_keyed_hash(self) -> None:
        api_key, key = ApiKey.issue(name="ci", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice)
        self.assertRegex(key, KEY)
        self.assertEqual(api_key.lookup, key[4:16])
        expected = hmac.new(settings.API_KEY_HASH_SECRET.encode(), key.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(api_key.digest, expected)
        secret = key[16:]
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM accounts_apikey")
            rows = cursor.fetchall()
        self.assertEqual(len(rows), 1)
        for value in rows[0]:
            self.assertNotIn(key, str(value))
            self.assertNotIn(secret[:20], str(value))
        self.assertNotIn(secret[:20], str(api_key))

    def test_it_authenticates_the_key_and_nothing_else(self) -> None:
        api_key, key = ApiKey.issue(name="ci", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        self.assertEqual(ApiKey.authenticate(key), api_key)
        self.assertIsNone(ApiKey.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")))
        self.assertIsNone(ApiKey.authenticate(key[4:]))
        self.assertIsNone(ApiKey.authenticate(""))
        self.assertIsNone(ApiKey.authenticate("eep_" + "0" * 60))

    def test_it_invalidates_every_key_when_the_hash_secret_changes(self) -> None:
        _, key = ApiKey.issue(name="ci", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        with self.settings(API_KEY_HASH_SECRET="another-secret"):
            self.assertIsNone(ApiKey.authenticate(key))
        self.assertIsNotNone(ApiKey.authenticate(key))

    def test_it_refuses_a_revoked_key(self) -> None:
        api_key, key = ApiKey.issue(name="ci", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        self.assertEqual(bearer(key).get("/api/v1/requests/").status_code, 200)
        api_key.revoke()
        self.assertIsNone(ApiKey.authenticate(key))
        r = bearer(key).get("/api/v1/requests/")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.json(), {"detail": "Invalid or revoked API key."})

    def test_it_notes_when_a_key_was_last_used(self) -> None:
        api_key, key = ApiKey.issue(name="ci", scope=Scope.CUSTOMER, tenant=self.acme, created_by=None)
        self.assertIsNone(api_key.last_used_at)
        bearer(key).get("/api/v1/requests/")
        api_key.refresh_from_db()
        self.assertIsNotNone(api_key.last_used_at)

    def test_it_refuses_a_malformed_authorization_header(self) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer two words")
        r = client.get("/api/v1/requests/")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(
            r.json(), {"detail": "Malformed Authorization header; send 'Authorization: Bearer <key>'."}
        )


class ApiKeyPageTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.client.force_login(self.alice)

    def test_it_creates_a_key_and_shows_it_once(self) -> None:
        r = self.client.post("/keys/", {"name": "deploy pipeline", "tenant": self.acme.pk})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Cache-Control"], "no-store")
        match = KEY.search(r.content.decode())
        assert match is not None
        key = match.group(0)
        api_key = ApiKey.authenticate(key)
        assert api_key is not None
        self.assertEqual(
            (api_key.name, api_key.scope, api_key.tenant, api_key.created_by),
            ("deploy pipeline", Scope.CUSTOMER, self.acme, self.alice),
        )
        self.assertEqual(AuditEvent.objects.for_object(api_key).get().action, "api_key.created")
        for event in AuditEvent.objects.values_list("before", "after", "object_label"):
            self.assertNotIn(key[16:36], str(event))
        self.assertEqual(bearer(key).get("/api/v1/requests/").status_code, 200)

        again = self.client.get("/keys/")
        self.assertNotContains(again, key)
        self.assertContains(again, f"{api_key.display_prefix}…")
        self.assertContains(again, "deploy pipeline")

    def test_it_creates_keys_only_for_the_customers_tenant(self) -> None:
        r = self.client.post("/keys/", {"name": "sneaky", "tenant": self.globex.pk})
        self.assertEqual(r.status_code, 200)
        self.assertIsNone(KEY.search(r.content.decode()))
        self.assertFalse(ApiKey.objects.exists())

    def test_it_requires_a_name(self) -> None:
        r = self.client.post("/keys/", {"name": "", "tenant": self.acme.pk})
        self.assertContains(r, "This field is required.")
        self.assertFalse(ApiKey.objects.exists())

    def test_it_revokes_a_key(self) -> None:
        api_key, key = ApiKey.issue(name="old", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice)
        r = self.client.post(f"/keys/{api_key.id}/revoke/", follow=True)
        self.assertRedirects(r, "/keys/")
        self.assertContains(r, "old is revoked; requests with it are now refused.")
        api_key.refresh_from_db()
        self.assertIsNotNone(api_key.revoked_at)
        self.assertEqual(AuditEvent.objects.for_object(api_key).get().action, "api_key.revoked")
        self.assertEqual(bearer(key).get("/api/v1/requests/").status_code, 401)

        r = self.client.post(f"/keys/{api_key.id}/revoke/", follow=True)
        self.assertContains(r, "old was already revoked.")
        self.assertEqual(AuditEvent.objects.for_object(api_key).count(), 1)

    def test_it_revokes_only_by_post(self) -> None:
        api_key, _ = ApiKey.issue(name="old", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice)
        self.assertEqual(self.client.get(f"/keys/{api_key.id}/revoke/").status_code, 405)
        api_key.refresh_from_db()
        self.assertIsNone(api_key.revoked_at)

    def test_it_does_not_list_staff_keys(self) -> None:
        ApiKey.issue(name="billing sync", scope=Scope.PROVISIONING, tenant=None, created_by=None)
        self.assertNotContains(self.client.get("/keys/"), "billing sync")

    def test_it_has_no_key_page_for_staff_without_a_tenant(self) -> None:
        self.client.force_login(self.rita)
        self.assertEqual(self.client.get("/keys/").status_code, 404)


class CreateApiKeyCommandTestCase(PortalTestCase):
    def create(self, *args: str) -> str:
        out = StringIO()
        call_command("create_api_key", *args, stdout=out)
        return out.getvalue().strip()

    def test_it_prints_a_working_key(self) -> None:
        key = self.create("--scope", "provisioning", "--name", "billing sync")
        self.assertRegex(key, f"^{KEY.pattern}$")
        api_key = ApiKey.authenticate(key)
        assert api_key is not None
        self.assertEqual(
            (api_key.scope, api_key.name, api_key.tenant), (Scope.PROVISIONING, "billing sync", None)
        )
        self.assertEqual(bearer(key).get("/api/v1/tenants/acme-1").status_code, 200)
        event = AuditEvent.objects.for_object(api_key).get()
        self.assertEqual((event.action, event.actor_label), ("api_key.created", "manage.py create_api_key"))

    def test_it_creates_a_customer_key_for_a_tenant(self) -> None:
        key = self.create("--scope", "customer", "--name", "acme ci", "--tenant", "acme-1")
        r = bearer(key).get("/api/v1/requests/")
        self.assertEqual(r.status_code, 200)
        api_key = ApiKey.authenticate(key)
        assert api_key is not None
        self.assertEqual(api_key.tenant, self.acme)

    def test_it_requires_a_tenant_for_a_customer_key(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "A customer key belongs to one tenant: add --tenant EXTERNAL_ID."
        ):
            self.create("--scope", "customer", "--name", "acme ci")
        self.assertFalse(ApiKey.objects.exists())

    def test_it_names_an_unknown_tenant(self) -> None:
        with self.assertRaisesMessage(CommandError, "No tenant has the external id 'nope'."):
            self.create("--scope", "customer", "--name", "x", "--tenant", "nope")
        self.assertFalse(ApiKey.objects.exists())

    def test_it_refuses_a_tenant_for_a_staff_key(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "--tenant only applies to customer keys, not enforcement keys."
        ):
            self.create("--scope", "enforcement", "--name", "fw", "--tenant", "acme-1")

    def test_it_refuses_an_unknown_scope(self) -> None:
        with self.assertRaisesMessage(CommandError, "invalid choice: 'root'"):
            self.create("--scope", "root", "--name", "x")
