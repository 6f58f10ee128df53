"""Creating and updating tenants from the provider's billing and IPAM systems."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal.accounts.models import Actor, Allocation, ApiKey, Membership, Tenant
from portal.audit.log import record
from portal.enforcement.models import Exemption
from portal.lib.ipblocks import Network
from portal.notifications.outbox import queue_email
from portal.workflows.exemptions import move

# Any constant works: it only has to be the same in every process that changes allocations.
ALLOCATION_LOCK = 7_250_025


@dataclass
class TenantSpec:
    external_id: str
    name: str
    account_opened_on: date
    identity_verified: bool = False
    billing_standing: str = "good"
    paid_invoices: int = 0
    abuse_contact: str = ""
    allocations: list[Network] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


@dataclass
class ProvisionResult:
    tenant: Tenant
    created: bool
    allocated: list[str]
    released: list[str]
    invited: list[str]
    removed_members: list[str]


ATTRIBUTES = (
    "name",
    "account_opened_on",
    "identity_verified",
    "billing_standing",
    "paid_invoices",
    "abuse_contact",
)


def provision_tenant(*, spec: TenantSpec, actor: Actor) -> ProvisionResult:
    """Make the tenant look exactly like `spec`. Running it twice changes nothing the second time."""
    with transaction.atomic(durable=True):
        _lock_allocations()
        # NO KEY: inserts that reference the tenant (exemptions, requests) take KEY SHARE locks on
        # it; FOR UPDATE would block them while this holds the feed lock: a deadlock cycle.
        tenant = Tenant.objects.select_for_update(no_key=True).filter(external_id=spec.external_id).first()
        created = tenant is None
        if tenant is None:
            tenant = Tenant(external_id=spec.external_id)
        before = {name: _plain(getattr(tenant, name, None)) for name in ATTRIBUTES} if not created else {}
        for name in ATTRIBUTES:
            setattr(tenant, name, getattr(spec, name))
        tenant.save()

        allocated, released = _sync_allocations(tenant, spec.allocations)
        invited, removed = _sync_members(tenant, spec.members)
        after = {name: _plain(getattr(tenant, name)) for name in ATTRIBUTES}
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        if created or changed or allocated or released or invited or removed:
            record(
                actor=actor,
                action="tenant.created" if created else "tenant.updated",
                obj=tenant,
                tenant_id=tenant.pk,
                before={k: before.get(k) for k in changed},
                after={
                    **changed,
                    **({"allocated": allocated} if allocated else {}),
                    **({"released": released} if released else {}),
                    **({"members_added": invited} if invited else {}),
                    **({"members_removed": removed} if removed else {}),
                },
            )
        return ProvisionResult(tenant, created, allocated, released, invited, removed)


def _lock_allocations() -> None:
    # Overlap checks read other tenants' allocations, so allocation changes are serialised.
    # SQLite needs nothing: its write transactions (BEGIN IMMEDIATE) are serial already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ALLOCATION_LOCK])


def _sync_allocations(tenant: Tenant, wanted: list[Network]) -> tuple[list[str], list[str]]:
    current = {a.network: a for a in Allocation.objects.filter(tenant=tenant).active()}
    wanted_set = set(wanted)
    now = timezone.now()
    released = []
    released_allocations = []
    for network, allocation in current.items():
        if network not in wanted_set:
            allocation.released_at = now
            allocation.save(update_fields=["released_at"])
            released.append(allocation.cidr)
            released_allocations.append(allocation)
    allocated = []
    errors = []
    for network in wanted:
        if network in current:
            continue
        clash = (
            Allocation.objects.active()
            .exclude(tenant=tenant)
            .overlapping(network)
            .select_related("tenant")
            .first()
        )
        if clash is not None:
            errors.append(
                f"{network} overlaps {clash.cidr}, which is allocated to tenant {clash.tenant.external_id}; "
                "release it there first."
            )
            continue
        allocation = Allocation(tenant=tenant, assigned_at=now)
        allocation.set_network(network)
        allocation.save()
        allocated.append(allocation.cidr)
    if errors:
        raise ValidationError({"allocations": errors})
    for allocation in released_allocations:
        _revoke_exemptions_inside(tenant, allocation)
    return allocated, released


def _revoke_exemptions_inside(tenant: Tenant, allocation: Allocation) -> None:
    # An exemption belongs to the holder of the address: once released, the next holder must
    # not inherit the right to send on port 25.
    actor = Actor.of_system("allocation released")
    for exemption in (
        Exemption.objects.filter(tenant=tenant)
        .in_force()
        .overlapping(allocation.network)
        .select_related("tenant")
    ):
        # Re-shaped allocations (a /26 listed as the /25 that contains it) still cover it.
        if Allocation.objects.filter(tenant=tenant).active().covering(exemption.network).exists():
            continue
        move(
            exemption, "exemption.revoked", actor=actor, reason=f"Allocation {allocation.cidr} was released."
        )


def _sync_members(tenant: Tenant, emails: list[str]) -> tuple[list[str], list[str]]:
    wanted = {email.strip().lower() for email in emails}
    memberships = {m.user.email.lower(): m for m in tenant.memberships.select_related("user")}
    removed = []
    for email, membership in memberships.items():
        if email not in wanted:
            membership.delete()
            removed.append(email)
            # Keys act for the tenant on the person's behalf: they leave with the person.
            ApiKey.objects.usable().filter(tenant=tenant, created_by=membership.user).update(
                revoked_at=timezone.now()
            )
    invited = []
    for email in sorted(wanted - memberships.keys()):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email, email=email)
            user.set_unusable_password()
            user.save()
        Membership.objects.create(user=user, tenant=tenant)
        invited.append(email)
        queue_email(
            to=[email],
            template="emails/invitation.txt",
            context={
                "tenant": tenant,
                "set_password_url": set_password_url(user),
                "has_password": user.has_usable_password(),
            },
        )
    return invited, removed


def set_password_url(user: User) -> str:
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return f"{settings.SITE_URL}{path}"


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
