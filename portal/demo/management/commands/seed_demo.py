"""Demonstration data for `make demo`. Safe to run again: it converges instead of duplicating."""

from __future__ import annotations

import ipaddress
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.utils import timezone

from portal.accounts.models import STAFF_ROLES, Actor, Tenant
from portal.enforcement.models import Exemption
from portal.unblock.models import UnblockRequest, UseCase
from portal.unblock.rules import RequestData
from portal.workflows.provisioning import TenantSpec, provision_tenant
from portal.workflows.requests import ask_for_info, save_request, start_review

DEMO_PASSWORD = "demo-password-25"  # noqa: S105 - demo data, printed by make demo

TENANTS = [
    TenantSpec(
        external_id="cust-1001",
        name="Acme Hosting Ltd",
        account_opened_on=date.today() - timedelta(days=400),
        identity_verified=True,
        paid_invoices=13,
        abuse_contact="abuse@acme.example",
        allocations=[ipaddress.ip_network("203.0.113.0/26"), ipaddress.ip_network("2001:db8:ac::/48")],
        members=["alice@acme.example"],
    ),
    TenantSpec(
        external_id="cust-1002",
        name="Globex Mail GmbH",
        account_opened_on=date.today() - timedelta(days=20),
        identity_verified=False,
        paid_invoices=0,
        abuse_contact="abuse@globex.example",
        allocations=[ipaddress.ip_network("198.51.100.64/27"), ipaddress.ip_network("2001:db8:9100::/48")],
        members=["bob@globex.example"],
    ),
]

STAFF = [
    ("reviewer@provider.example", ["reviewer"]),
    ("approver@provider.example", ["reviewer", "approver"]),
    ("admin@provider.example", ["reviewer", "approver", "admin"]),
]


class Command(BaseCommand):
    help = "Load demonstration tenants, people and requests (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.of_system("demo data")
        for role in STAFF_ROLES:
            Group.objects.get_or_create(name=role)
        for spec in TENANTS:
            provision_tenant(spec=spec, actor=actor)
            for email in spec.members:
                self._ensure_password(User.objects.get(email=email))
        for email, roles in STAFF:
            user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
            user.groups.set(Group.objects.filter(name__in=roles))
            if "admin" in roles:
                user.is_staff = user.is_superuser = True
                user.save()
            self._ensure_password(user)
        self._demo_requests(actor)

    def _ensure_password(self, user: User) -> None:
        if not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save()

    def _demo_requests(self, system: Actor) -> None:
        self._acme_requests()
        self._globex_requests()

    def _acme_requests(self) -> None:
        acme = Tenant.objects.get(external_id="cust-1001")
        if UnblockRequest.objects.for_tenant(acme).exists():
            return
        alice = Actor(user=User.objects.get(email="alice@acme.example"))
        save_request(
            tenant=acme,
            actor=alice,
            submit=True,
            data=RequestData(
                addresses=["203.0.113.25"],
                use_case=UseCase.OWN_MAIL_SERVER,
                justification=(
                    "We run our own MX and outbound MTA for acme.example; "
                    "a relay would break our DKIM key management."
                ),
                mail_software="Postfix 3.8 with OpenDKIM",
                sending_domains=["acme.example"],
                expected_daily_volume=2500,
                bounce_handling=(
                    "Bounces are processed by Postfix and suppressed after 3 hard bounces; "
                    "FBL complaints unsubscribe at once."
                ),
                abuse_contact="abuse@acme.example",
                accept_aup=True,
            ),
        )
        second = save_request(
            tenant=acme,
            actor=alice,
            submit=True,
            data=RequestData(
                addresses=["203.0.113.32/29"],
                use_case=UseCase.TRANSACTIONAL,
                justification=(
                    "Order confirmations for our shop platform; the platform vendor requires direct delivery."
                ),
                mail_software="Haraka 3",
                sending_domains=["shop.acme.example"],
                expected_daily_volume=12000,
                bounce_handling="Webhook from Haraka into our CRM; hard bounces are suppressed.",
                abuse_contact="abuse@acme.example",
                accept_aup=True,
            ),
        )
        reviewer = Actor(user=User.objects.get(email="reviewer@provider.example"))
        start_review(req=second, actor=reviewer)
        ask_for_info(
            req=second,
            actor=reviewer,
            question="Which DKIM selector will shop.acme.example use, and who receives DMARC reports?",
        )
        # 203.0.113.40 is on the demo blocklist: vetting denies this one, so the customer's home
        # and the denied page show a denial with its fix.
        save_request(
            tenant=acme,
            actor=alice,
            submit=True,
            data=RequestData(
                addresses=["203.0.113.40"],
                use_case=UseCase.TRANSACTIONAL,
                justification="Password resets for the staging shop.",
                mail_software="Postfix 3.8",
                sending_domains=["acme.example"],
                expected_daily_volume=200,
                bounce_handling="Suppressed after one hard bounce.",
                abuse_contact="abuse@acme.example",
                accept_aup=True,
            ),
        )
        # An older exemption close to its expiry, for the home page's renewal reminder. Made
        # directly: the approval that would have granted it is history the demo doesn't need.
        exemption = Exemption(tenant=acme, expires_at=timezone.now() + timedelta(days=9, hours=2))
        exemption.set_network(ipaddress.ip_network("203.0.113.10/32"))
        exemption.save()

    def _globex_requests(self) -> None:
        # A young tenant with a shaky set-up: the checks warn and fail, the risk is high, and
        # four-eyes applies, so the queue and the reviewer's page show what they are for.
        globex = Tenant.objects.get(external_id="cust-1002")
        if UnblockRequest.objects.for_tenant(globex).exists():
            return
        save_request(
            tenant=globex,
            actor=Actor(user=User.objects.get(email="bob@globex.example")),
            submit=True,
            data=RequestData(
                addresses=["198.51.100.70"],
                use_case=UseCase.OWN_MAIL_SERVER,
                justification="Our mail server delivers directly; we never set up a relay.",
                mail_software="Exim 4.97",
                sending_domains=["globex.example"],
                expected_daily_volume=3000,
                bounce_handling="We remove addresses that bounce three times.",
                abuse_contact="abuse@globex.example",
                accept_aup=True,
            ),
        )
