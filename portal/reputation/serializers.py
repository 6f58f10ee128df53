from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from portal.accounts.models import Tenant
from portal.lib.ipblocks import BlockError, parse_block
from portal.ops.api_fields import StrictBooleanField, StrictCharField
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.workflows.reputation import EventSpec


class EventInputSerializer(serializers.Serializer[EventSpec]):
    address = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    tenant = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="The tenant's external id, for events about a tenant.",
    )
    source = serializers.ChoiceField(choices=Source.choices)  # type: ignore[assignment]
    kind = serializers.ChoiceField(choices=Kind.choices)
    observed_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    zone = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    code = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    meaning = StrictCharField(max_length=300, required=False, allow_blank=True, default="")
    summary = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    link = serializers.URLField(required=False, allow_blank=True, default="")
    abuse = StrictBooleanField(required=False, allow_null=True, default=None)
    evidence = serializers.DictField(required=False, default=dict)

    def validate_evidence(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, allow_nan=False))
        except (ValueError, TypeError):
            raise serializers.ValidationError(
                "Evidence must be plain JSON: no NaN or Infinity numbers."
            ) from None
        if size > 65_536:
            raise serializers.ValidationError(f"Evidence is {size:,} bytes as JSON; send at most 65,536.")
        return value

    def validate_address(self, value: str) -> Any:
        if not value.strip():
            return None
        try:
            return parse_block(value)
        except BlockError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_tenant(self, value: str) -> Tenant | None:
        if not value:
            return None
        tenant = Tenant.objects.filter(external_id=value).first()
        if tenant is None:
            raise serializers.ValidationError(f"No tenant has the external id “{value}”.")
        return tenant

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("address") is None and attrs.get("tenant") is None:
            raise serializers.ValidationError("Give an address, a tenant external id, or both.")
        return attrs

    def to_spec(self) -> EventSpec:
        data = dict(self.validated_data)
        return EventSpec(network=data.pop("address"), **data)


class EventSerializer(serializers.ModelSerializer[ReputationEvent]):
    address = serializers.CharField(source="cidr")
    tenant = serializers.SerializerMethodField()

    class Meta:
        model = ReputationEvent
        fields = [
            "id",
            "address",
            "tenant",
            "source",
            "kind",
            "zone",
            "code",
            "meaning",
            "abuse",
            "observed_at",
            "recorded_at",
            "summary",
            "evidence",
            "link",
            "reported_by",
        ]

    def get_tenant(self, event: ReputationEvent) -> str | None:
        return event.tenant.external_id if event.tenant else None
