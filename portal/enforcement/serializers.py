from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from rest_framework import serializers

from portal.enforcement.forms import validate_endpoint_url
from portal.enforcement.models import EVENT_TYPES, Attempt, Delivery, WebhookEndpoint
from portal.ops.api_fields import StrictBooleanField, StrictCharField


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        default=list,
        help_text="Empty: every event.",
    )
    secret = serializers.CharField(read_only=True, help_text="whsec_… — verify signatures with it.")
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: StrictBooleanField,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "secret",
            "previous_secret_expires_at",
            "failing_since",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = ["previous_secret_expires_at", "failing_since", "disabled_reason", "created_at"]

    def validate_url(self, value: str) -> str:
        try:
            validate_endpoint_url(value)
        except forms.ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value


class AttemptSerializer(serializers.ModelSerializer[Attempt]):
    class Meta:
        model = Attempt
        fields = ["at", "status_code", "duration_ms", "response_excerpt", "error"]


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    # The public id: the integer key never leaves the portal.
    id = serializers.UUIDField(source="uuid", read_only=True)
    attempts = AttemptSerializer(source="attempt_log", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "message_id",
            "event",
            "state",
            "created_at",
            "delivered_at",
            "next_attempt_at",
            "last_status",
            "attempts",
        ]


class RangeSerializer(serializers.Serializer[dict[str, Any]]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
