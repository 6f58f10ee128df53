"""Creating and updating tenants from the provider's billing and IPAM systems."""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Iterable
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
from portal.lib.ipblocks import Network, bounds
from portal.notifications.outbox import queue_email
from portal.workflows.exemptions import move

# A PUT lists every block the tenant holds; this bounds one call's work (bench/provisioning.py
# writes 10,000 in a few seconds on PostgreSQL). docs/api.md states it.
MAX_ALLOCATIONS_PER_CALL = 20_000

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
    # Set-wise throughout: a PUT may list MAX_ALLOCATIONS_PER_CALL blocks, and one query or one
    # INSERT per block took minutes at 10,000.
    current = {a.network: a for a in Allocation.objects.filter(tenant=tenant).active()}
    wanted_set = set(wanted)
    now = timezone.now()
    new = [network for network in wanted if network not in current]
    # Released first (an error rolls it back with the rest): the tenant's remaining active blocks
    # are then all in `wanted`, which the serializer checked for overlaps, so none overlaps a new one.
    released_allocations = [a for network, a in current.items() if network not in wanted_set]
    for batch in _batches([a.pk for a in released_allocations]):
        Allocation.objects.filter(pk__in=batch).update(released_at=now)
    clashes = _clashes(tenant, new)
    if clashes:
        raise ValidationError(
            {
                "allocations": [
                    f"{network} overlaps {clashes[network][0]}, which is allocated to tenant "
                    f"{clashes[network][1]}; release it there first."
                    for network in new
                    if network in clashes
                ]
            }
        )
    rows = []
    for network in new:
        allocation = Allocation(tenant=tenant, assigned_at=now)
        allocation.set_network(network)
        rows.append(allocation)
    Allocation.objects.bulk_create(rows, batch_size=BATCH)
    if released_allocations:
        _revoke_exemptions_inside(tenant, [a.network for a in released_allocations])
    return [a.cidr for a in rows], [a.cidr for a in released_allocations]


BATCH = 2000


def _batches[T](items: list[T]) -> list[list[T]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def _clashes(tenant: Tenant, networks: list[Network]) -> dict[Network, tuple[str, str]]:
    """For each network that overlaps another tenant's active allocation: that block and tenant.

    Active allocations never overlap each other (this check keeps it so, under the allocation
    lock), so the only one to look at is the last to start at or before the network's last
    address: if it does not reach the network, no active block does. That is one index probe per
    network, a batch at a time as correlated subqueries over VALUES. The probe does not filter
    by tenant: skipping the tenant's own blocks, which sit next to the new ones, made it scan
    thousands of index entries per probe.
    """
    clashes: dict[Network, tuple[str, str]] = {}
    table = Allocation._meta.db_table
    for batch in _batches(networks):
        bounds_of = [bounds(network) for network in batch]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(batch))
        params: list[int | str] = []
        for index, b in enumerate(bounds_of):
            params += [index, b.family, b.first, b.last]
        sql = f"""
            SELECT n.i, (
                SELECT a.id FROM {table} a
                WHERE a.family = n.family AND a.first <= n.last AND a.released_at IS NULL
                ORDER BY a.family DESC, a.first DESC LIMIT 1
            )
            FROM (VALUES {values}) AS n (i, family, first, last)
        """  # noqa: S608 (the table name comes from the model; every value is a parameter)
        if connection.vendor == "sqlite":
            # SQLite names VALUES columns column1..4 and takes no column list after the alias.
            sql = sql.replace("AS n (i, family, first, last)", "AS n").replace("n.i", "n.column1")
            sql = sql.replace("n.family", "n.column2").replace("n.first", "n.column3")
            sql = sql.replace("n.last", "n.column4")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            nearest = {int(index): pk for index, pk in cursor.fetchall() if pk is not None}
        candidates = Allocation.objects.filter(pk__in=set(nearest.values())).select_related("tenant")
        by_pk = {a.pk: a for a in candidates}
        for index, pk in nearest.items():
            other = by_pk[_pk(pk)]
            if other.tenant_id != tenant.pk and other.last >= bounds_of[index].first:
                clashes[batch[index]] = (other.cidr, other.tenant.external_id)
    return clashes


def _pk(value: object) -> uuid.UUID:
    # SQLite hands the UUID back as 32 hex digits; PostgreSQL as a UUID.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _revoke_exemptions_inside(tenant: Tenant, released: list[Network]) -> None:
    # An exemption belongs to the holder of the address: once released, the next holder must
    # not inherit the right to send on port 25.
    actor = Actor.of_system("allocation released")
    held = _Spans(a.network for a in Allocation.objects.filter(tenant=tenant).active())
    gone = _Spans(released)
    for exemption in Exemption.objects.filter(tenant=tenant).in_force().select_related("tenant"):
        network = exemption.network
        block = gone.overlapping(network)
        # Re-shaped allocations (a /26 listed as the /25 that contains it) still cover it.
        if block is None or held.covers(network):
            continue
        move(exemption, "exemption.revoked", actor=actor, reason=f"Allocation {block} was released.")


class _Spans:
    """A tenant's blocks, which never overlap each other, searchable by address."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.sorted = sorted(networks, key=lambda n: (n.version, int(n.network_address)))
        self.keys = [(n.version, int(n.network_address)) for n in self.sorted]

    def _last_starting_by(self, network: Network, address: int) -> Network | None:
        index = bisect_right(self.keys, (network.version, address)) - 1
        return self.sorted[index] if index >= 0 and self.sorted[index].version == network.version else None

    def covers(self, network: Network) -> bool:
        block = self._last_starting_by(network, int(network.network_address))
        return block is not None and int(block.broadcast_address) >= int(network.broadcast_address)

    def overlapping(self, network: Network) -> Network | None:
        # Blocks don't overlap each other: only the last to start by the network's end can.
        block = self._last_starting_by(network, int(network.broadcast_address))
        return (
            block
            if block is not None and int(block.broadcast_address) >= int(network.network_address)
            else None
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
