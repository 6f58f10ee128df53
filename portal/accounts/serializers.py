from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.models import BillingStanding, Tenant
from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.workflows.provisioning import TenantSpec


class TenantSpecSerializer(serializers.Serializer[TenantSpec]):
    """The whole desired state of a tenant, as the provider's systems PUT it."""

    name = serializers.CharField(max_length=200)
    account_opened_on = serializers.DateField()
    identity_verified = serializers.BooleanField(default=False)
    billing_standing = serializers.ChoiceField(choices=BillingStanding.choices, default=BillingStanding.GOOD)
    paid_invoices = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    abuse_contact = serializers.EmailField(required=False, allow_blank=True, default="")
    allocations = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=10_000, default=list
    )
    members = serializers.ListField(child=serializers.EmailField(), max_length=1000, default=list)

    def validate_allocations(self, value: list[str]) -> list[Network]:
        networks: list[Network] = []
        errors: list[str] = []
        for entry in value:
            try:
                network = parse_block(entry)
            except BlockError as exc:
                errors.append(str(exc))
                continue
            clash = next((n for n in networks if n.version == network.version and n.overlaps(network)), None)
            if clash is not None:
                errors.append(f"{network} overlaps {clash}, listed earlier; list each block once.")
                continue
            networks.append(network)
        if errors:
            raise serializers.ValidationError(errors)
        return networks

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
