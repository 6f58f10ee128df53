"""A customer sees and changes only their own tenant's objects; everything else is a 404."""

from __future__ import annotations

import uuid

from portal.accounts.models import Actor, ApiKey, Scope
from portal.unblock.models import State, UnblockRequest
from portal.workflows.requests import ask_for_info
from tests.base import PortalTestCase, complete_request_data


class TenantIsolationTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.draft = self.make_request(self.acme, "203.0.113.5", state=State.DRAFT)
        self.open = self.make_request(self.acme, "203.0.113.6", state=State.SUBMITTED)
        ask_for_info(req=self.open, actor=Actor(user=self.rita), question="Which DKIM selector?")
        self.key, _ = ApiKey.issue(
            name="acme deploy", scope=Scope.CUSTOMER, tenant=self.acme, created_by=self.alice
        )

    def assertUntouched(self) -> None:
        self.assertEqual(UnblockRequest.objects.get(pk=self.draft.pk).state, State.DRAFT)
        self.assertEqual(UnblockRequest.objects.get(pk=self.open.pk).state, State.NEEDS_INFO)
        self.assertEqual(self.draft.blocks.get().cidr, "203.0.113.5")
        self.assertEqual(self.open.messages.count(), 1)
        self.assertIsNone(ApiKey.objects.get(pk=self.key.pk).revoked_at)

    def test_it_uses_uuids_in_urls(self) -> None:
        self.assertIsInstance(self.draft.pk, uuid.UUID)
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/requests/"), f'href="/requests/{self.draft.id}/"')
        self.assertEqual(self.client.get("/requests/1/").status_code, 404)
        self.assertEqual(self.api().get("/api/v1/requests/1").status_code, 404)

    def test_it_shows_the_owner_their_requests(self) -> None:
        # The other tests below only mean something if these pages work for the owner.
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get(f"/requests/{self.draft.id}/").status_code, 200)
        self.assertEqual(self.client.get(f"/requests/{self.draft.id}/edit/").status_code, 200)
        self.assertContains(self.client.get("/requests/"), self.draft.reference)
        self.assertEqual(self.api().get(f"/api/v1/requests/{self.draft.id}").status_code, 200)

    def test_it_hides_other_tenants_requests_on_every_page(self) -> None:
        self.client.force_login(self.bob)
        for req in (self.draft, self.open):
            with self.subTest(state=req.state):
                self.assertEqual(self.client.get(f"/requests/{req.id}/").status_code, 404)
                self.assertEqual(self.client.get(f"/requests/{req.id}/edit/").status_code, 404)
                r = self.client.post(
                    f"/requests/{req.id}/edit/", {"action": "draft", "addresses": "198.51.100.70"}
                )
                self.assertEqual(r.status_code, 404)
                self.assertEqual(self.client.post(f"/requests/{req.id}/submit/").status_code, 404)
                self.assertEqual(
                    self.client.post(f"/requests/{req.id}/withdraw/", {"reason": "x"}).status_code, 404
                )
                self.assertEqual(
                    self.client.post(f"/requests/{req.id}/answer/", {"text": "x"}).status_code, 404
                )
        self.assertEqual(self.client.post(f"/keys/{self.key.id}/revoke/").status_code, 404)
        self.assertUntouched()

    def test_it_files_requests_only_for_the_customers_own_tenant(self) -> None:
        self.client.force_login(self.bob)
        # A complete request for an address of Acme's: only the tenant check stands in its way.
        body = complete_request_data(addresses="203.0.113.40", sending_domains="acme.example")
        r = self.client.post(
            "/requests/new/", {**body, "tenant": self.acme.pk, "accept_aup": "on", "action": "submit"}
        )
        self.assertEqual(r.status_code, 200)
        self.assertIn("tenant", r.context["form"].errors)
        self.assertEqual(UnblockRequest.objects.filter(tenant=self.acme).count(), 2)
        self.assertFalse(UnblockRequest.objects.filter(tenant=self.globex).exists())

    def test_it_lists_only_the_customers_own_requests(self) -> None:
        mine = self.make_request(self.globex, "198.51.100.70")
        self.client.force_login(self.bob)
        page = self.client.get("/requests/")
        self.assertContains(page, mine.reference)
        self.assertNotContains(page, self.draft.reference)
        self.assertNotContains(page, self.open.reference)
        self.assertNotContains(page, "203.0.113.")
        self.assertEqual(list(page.context["reqs"]), [mine])
        keys = self.client.get("/keys/")
        self.assertNotContains(keys, "acme deploy")
        self.assertNotContains(keys, self.key.display_prefix)

    def test_it_hides_other_tenants_requests_in_the_api(self) -> None:
        bob = self.api(tenant=self.globex)
        for req in (self.draft, self.open):
            with self.subTest(state=req.state):
                url = f"/api/v1/requests/{req.id}"
                self.assertEqual(bob.get(url).status_code, 404)
                body = complete_request_data(addresses=["198.51.100.70"], submit=False)
                self.assertEqual(bob.put(url, body, format="json").status_code, 404)
                self.assertEqual(bob.post(f"{url}/submit").status_code, 404)
                self.assertEqual(bob.post(f"{url}/withdraw", {"reason": "x"}, format="json").status_code, 404)
                self.assertEqual(bob.post(f"{url}/answer", {"text": "x"}, format="json").status_code, 404)
        self.assertUntouched()

    def test_it_lists_only_the_keys_tenants_requests_in_the_api(self) -> None:
        mine = self.make_request(self.globex, "198.51.100.70")
        r = self.api(tenant=self.globex).get("/api/v1/requests/")
        self.assertEqual([item["id"] for item in r.json()["results"]], [str(mine.id)])
        r = self.api(tenant=self.globex).get("/api/v1/requests/?state=draft")
        self.assertEqual(r.json()["results"], [])
        r = self.api().get("/api/v1/requests/")
        self.assertEqual(
            {item["id"] for item in r.json()["results"]}, {str(self.draft.id), str(self.open.id)}
        )

    def test_it_refuses_customer_pages_to_anonymous_visitors(self) -> None:
        for url in ("/requests/", "/requests/new/", f"/requests/{self.draft.id}/", "/keys/"):
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertRedirects(r, f"/login/?next={url}", fetch_redirect_response=False)

    def test_it_hides_the_staff_pages_from_customers(self) -> None:
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/review/").status_code, 404)
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/review/").status_code, 404)

    def test_it_sends_anonymous_visitors_of_staff_pages_to_the_login(self) -> None:
        r = self.client.get("/review/")
        self.assertRedirects(r, "/login/?next=/review/", fetch_redirect_response=False)

    def test_it_shows_the_staff_pages_to_reviewers(self) -> None:
        self.client.force_login(self.rita)
        self.assertContains(self.client.get("/review/"), self.open.reference)
