"""The cast every test can use, created once per test class.

Acme (tenant A) holds 203.0.113.0/26 and 2001:db8:a::/48 and once held 192.0.2.0/28 (released).
Globex (tenant B) holds 198.51.100.64/27. Alice is Acme's customer, Bob is Globex's; Rita
reviews, Ada approves, Root administers.
"""

from __future__ import annotations

import ipaddress
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.test import TestCase
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import Allocation, ApiKey, Membership, Scope, Tenant
from portal.enforcement.models import Exemption
from portal.unblock.models import RequestedBlock, State, UnblockRequest, UseCase

PASSWORD = "correct-horse-battery-25"


def make_user(email: str, *roles: str) -> User:
    user = User.objects.create_user(username=email, email=email, password=PASSWORD)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    if "admin" in roles:
        user.is_staff = user.is_superuser = True
        user.save()
    return user


def allocate(tenant: Tenant, cidr: str, *, released: bool = False) -> Allocation:
    allocation = Allocation(tenant=tenant, assigned_at=timezone.now() - timedelta(days=100))
    allocation.set_network(ipaddress.ip_network(cidr))
    if released:
        allocation.released_at = timezone.now() - timedelta(days=10)
    allocation.save()
    return allocation


def make_request(
    tenant: Tenant, *cidrs: str, state: str = State.SUBMITTED, allocate_missing: bool = False
) -> UnblockRequest:
    """A request for `cidrs` in `state`, created directly (no workflow) for tests that need one.

    Non-drafts count as vetted (low risk, nothing failing), as the worker would leave them.
    `allocate_missing` first gives the tenant the addresses it doesn't hold (approval checks
    that it does), for tests that use addresses outside the cast's allocations.
    """
    req = UnblockRequest.objects.create(
        tenant=tenant,
        state=state,
        use_case=UseCase.OWN_MAIL_SERVER,
        justification="Own MX",
        mail_software="Postfix",
        sending_domains=["example.com"],
        expected_daily_volume=100,
        bounce_handling="Suppressed",
        abuse_contact="abuse@example.com",
        aup_accepted_at=timezone.now(),
        submitted_at=None if state == State.DRAFT else timezone.now(),
        vetted_at=None if state == State.DRAFT else timezone.now(),
    )
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr)
        held = Allocation.objects.filter(tenant=tenant).active().covering(network).exists()
        if allocate_missing and not held:
            allocate(tenant, cidr)
        block = RequestedBlock(request=req)
        block.set_network(network)
        block.save()
    return req


def make_exemption(tenant: Tenant, cidr: str, **fields: Any) -> Exemption:
    """An exemption created directly (no approval), in force for 30 days unless `fields` say otherwise."""
    fields.setdefault("expires_at", timezone.now() + timedelta(days=30))
    exemption = Exemption(tenant=tenant, **fields)
    exemption.set_network(ipaddress.ip_network(cidr))
    exemption.save()
    return exemption


def complete_request_data(**overrides: Any) -> dict[str, Any]:
    """The JSON body of a complete, valid request for Acme."""
    data: dict[str, Any] = {
        "addresses": ["203.0.113.10"],
        "use_case": UseCase.OWN_MAIL_SERVER,
        "justification": "We run our own MX for acme.example.",
        "mail_software": "Postfix 3.8",
        "sending_domains": ["acme.example"],
        "expected_daily_volume": 500,
        "bounce_handling": "Hard bounces are suppressed after one failure.",
        "abuse_contact": "abuse@acme.example",
        "accept_aup": True,
    }
    data.update(overrides)
    return data


class PortalTestCase(TestCase):
    acme: Tenant
    globex: Tenant
    alice: User
    bob: User
    rita: User
    ada: User
    root: User

    @classmethod
    def setUpTestData(cls) -> None:
        cls.acme = Tenant.objects.create(
            external_id="acme-1",
            name="Acme Ltd",
            account_opened_on=date(2025, 1, 1),
            identity_verified=True,
            paid_invoices=12,
            abuse_contact="abuse@acme.example",
        )
        cls.globex = Tenant.objects.create(
            external_id="globex-2", name="Globex GmbH", account_opened_on=date(2026, 10, 1)
        )
        allocate(cls.acme, "203.0.113.0/26")
        allocate(cls.acme, "2001:db8:a::/48")
        allocate(cls.acme, "192.0.2.0/28", released=True)
        allocate(cls.globex, "198.51.100.64/27")
        cls.alice = make_user("alice@acme.example")
        cls.bob = make_user("bob@globex.example")
        Membership.objects.create(user=cls.alice, tenant=cls.acme)
        Membership.objects.create(user=cls.bob, tenant=cls.globex)
        cls.rita = make_user("rita@provider.example", "reviewer")
        cls.ada = make_user("ada@provider.example", "reviewer", "approver")
        cls.root = make_user("root@provider.example", "reviewer", "approver", "admin")

    def make_request(
        self, tenant: Tenant | None = None, *cidrs: str, state: str = State.SUBMITTED
    ) -> UnblockRequest:
        """`make_request` for the cast: Acme by default, one address of the tenant's if none given."""
        tenant = tenant or self.acme
        default = "203.0.113.5" if tenant == self.acme else "198.51.100.70"
        return make_request(tenant, *(cidrs or (default,)), state=state)

    def api(self, scope: str = Scope.CUSTOMER, tenant: Tenant | None = None) -> APIClient:
        """An API client carrying a fresh key of `scope` (customer keys belong to Acme by default)."""
        if scope == Scope.CUSTOMER and tenant is None:
            tenant = self.acme
        _, key = ApiKey.issue(name=f"test {scope}", scope=scope, tenant=tenant, created_by=None)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client
