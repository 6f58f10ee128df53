from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.models import BillingStanding, Tenant
from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.ops.api_fields import StrictBooleanField, StrictCharField, StrictIntegerField
from portal.workflows.provisioning import MAX_ALLOCATIONS_PER_CALL, TenantSpec


class TenantSpecSerializer(serializers.Serializer[TenantSpec]):
    """The whole desired state of a tenant, as the provider's systems PUT it."""

    name = StrictCharField(max_length=200)
    account_opened_on = serializers.DateField()
    identity_verified = StrictBooleanField(default=False)
    billing_standing = serializers.ChoiceField(choices=BillingStanding.choices, default=BillingStanding.GOOD)
    paid_invoices = StrictIntegerField(min_value=0, max_value=1_000_000, default=0)
    abuse_contact = serializers.EmailField(required=False, allow_blank=True, default="")
    allocations = serializers.ListField(
        child=StrictCharField(max_length=64),
        max_length=MAX_ALLOCATIONS_PER_CALL,
        default=list,
        error_messages={
            "max_length": f"List at most {MAX_ALLOCATIONS_PER_CALL:,} allocations; a tenant holds at "
            "most that many blocks. Aggregate adjacent blocks into larger ones."
        },
    )
    members = serializers.ListField(child=serializers.EmailField(), max_length=1000, default=list)

    def validate_allocations(self, value: list[str]) -> list[Network]:
        errors: list[tuple[int, str]] = []
        parsed: list[tuple[int, Network]] = []
        for index, entry in enumerate(value):
            try:
                parsed.append((index, parse_block(entry)))
            except BlockError as exc:
                errors.append((index, str(exc)))
        # Sorted by start, a block overlaps an earlier one only if it starts before the widest
        # block still open ends (CIDR blocks nest or are disjoint): one pass, not n² comparisons.
        parsed.sort(key=lambda item: (item[1].version, int(item[1].network_address), item[1].prefixlen))
        accepted: list[tuple[int, Network]] = []
        open_: tuple[int, Network] | None = None
        for index, network in parsed:
            if open_ is not None and open_[1].version == network.version and open_[1].overlaps(network):
                # The one listed later is refused, as if the list were checked in its own order.
                (_, kept), (later, refused) = sorted([open_, (index, network)], key=lambda i: i[0])
                errors.append((later, f"{refused} overlaps {kept}, listed earlier; list each block once."))
                if later == open_[0]:
                    accepted.remove(open_)
                    accepted.append((index, network))
                    open_ = (index, network)
                continue
            accepted.append((index, network))
            open_ = (index, network)
        if errors:
            raise serializers.ValidationError([message for _, message in sorted(errors)])
        return [network for _, network in sorted(accepted, key=lambda i: i[0])]

    def to_spec(self, external_id: str) -> TenantSpec:
        data: dict[str, Any] = dict(self.validated_data)
        return TenantSpec(external_id=external_id, **data)


class AllocationSerializer(serializers.Serializer[dict[str, Any]]):
    cidr = serializers.CharField()
    assigned_at = serializers.DateTimeField()
    released_at = serializers.DateTimeField(
        allow_null=True, help_text="Set once the tenant gave the block back."
    )


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    allocations = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = [
            "id",
            "external_id",
            "name",
            "account_opened_on",
            "identity_verified",
            "billing_standing",
            "paid_invoices",
            "abuse_contact",
            "allocations",
            "members",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(AllocationSerializer(many=True))
    def get_allocations(self, tenant: Tenant) -> list[dict[str, Any]]:
        return [
            {"cidr": a.cidr, "assigned_at": a.assigned_at, "released_at": a.released_at}
            for a in tenant.allocations.order_by("family", "first", "assigned_at")
        ]

    def get_members(self, tenant: Tenant) -> list[str]:
        return sorted(m.user.email for m in tenant.memberships.select_related("user"))
