from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.accounts.models import Tenant
from portal.audit.models import AuditEvent
from portal.enforcement import grantable
from portal.ops.api_fields import StrictBooleanField, StrictCharField, StrictIntegerField
from portal.unblock import rules
from portal.unblock.models import Message, MessageKind, State, UnblockRequest, UseCase
from portal.vetting.models import CheckResult
from portal.vetting.summary import VettingSummary, summarize


def _run(check: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return check(*args, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


class RequestInputSerializer(serializers.Serializer[rules.RequestData]):
    addresses = serializers.ListField(child=StrictCharField(max_length=64, allow_blank=True), default=list)
    use_case = serializers.ChoiceField(choices=UseCase.choices, required=False, allow_blank=True, default="")
    justification = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=True)
    mail_software = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    sending_domains = serializers.ListField(child=StrictCharField(max_length=253), default=list)
    expected_daily_volume = StrictIntegerField(required=False, allow_null=True, default=None)
    bounce_handling = StrictCharField(required=False, allow_blank=True, default="")
    abuse_contact = StrictCharField(max_length=254, required=False, allow_blank=True, default="")
    accept_aup = StrictBooleanField(default=False)
    submit = StrictBooleanField(
        default=True, help_text="false saves a draft; true (the default) submits the request for review."
    )

    def validate_addresses(self, value: list[str]) -> list[str]:
        tenant: Tenant = self.context["tenant"]
        editing: UnblockRequest | None = self.context.get("editing")
        entries = [v.strip() for v in value if v.strip()]
        _run(grantable.clean_addresses, entries, tenant=tenant, editing=editing)
        return entries

    def validate_use_case(self, value: str) -> str:
        return str(_run(rules.clean_use_case, value))

    def validate_justification(self, value: str) -> str:
        return str(_run(rules.clean_text, value, "The justification"))

    def validate_bounce_handling(self, value: str) -> str:
        return str(_run(rules.clean_text, value, "The bounce handling description"))

    def validate_sending_domains(self, value: list[str]) -> list[str]:
        return list(_run(rules.clean_domains, value))

    def validate_expected_daily_volume(self, value: int | None) -> int | None:
        result: int | None = _run(rules.clean_volume, value)
        return result

    def validate_abuse_contact(self, value: str) -> str:
        return str(_run(rules.clean_abuse_contact, value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("submit", True):
            data = rules.RequestData(**{k: v for k, v in attrs.items() if k != "submit"})
            if missing := rules.missing_for_submit(data):
                raise serializers.ValidationError({name: [msg] for name, msg in missing.items()})
        return attrs

    def to_data(self) -> tuple[rules.RequestData, bool]:
        attrs = dict(self.validated_data)
        submit = bool(attrs.pop("submit", True))
        return rules.RequestData(**attrs), submit


class MessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ["id", "kind", "author_label", "body", "created_at"]


class RequestSerializer(serializers.ModelSerializer[UnblockRequest]):
    tenant = serializers.CharField(source="tenant.external_id")
    addresses = serializers.SerializerMethodField()
    sending_domains = serializers.ListField(child=serializers.CharField())
    messages = serializers.SerializerMethodField()
    aup_accepted = serializers.SerializerMethodField()

    class Meta:
        model = UnblockRequest
        fields = [
            "id",
            "reference",
            "tenant",
            "state",
            "addresses",
            "use_case",
            "justification",
            "mail_software",
            "sending_domains",
            "expected_daily_volume",
            "bounce_handling",
            "abuse_contact",
            "aup_accepted",
            "created_at",
            "submitted_at",
            "state_changed_at",
            "decided_at",
            "messages",
        ]

    def get_addresses(self, req: UnblockRequest) -> list[str]:
        return [b.cidr for b in req.blocks.all()]

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, req: UnblockRequest) -> list[dict[str, Any]]:
        return list(MessageSerializer(req.messages.visible_to_customer(), many=True).data)

    def get_aup_accepted(self, req: UnblockRequest) -> bool:
        return req.aup_accepted_at is not None


class CustomerCheckSerializer(serializers.Serializer[CheckResult]):
    """One check of the latest finished run, as the customer's page shows it."""

    check = serializers.CharField(source="check_name", help_text="The check's identifier, e.g. dnsbl.")
    title = serializers.CharField()
    subject = serializers.CharField(help_text="The address or domain checked.")
    outcome = serializers.ChoiceField(choices=["pass", "info", "warn", "fail", "error"])
    summary = serializers.CharField(
        source="customer_summary",
        help_text="What the check found. An error (no usable answer) reads "
        '"We could not check this; a reviewer will."',
    )
    fix = serializers.CharField(
        source="customer_fix", help_text="How to fix a warning or a failure; blank when nothing to do."
    )


class RequestDetailSerializer(RequestSerializer):
    """One request with what its page shows: the checks, the reviewer's questions, the denial."""

    checks = serializers.SerializerMethodField()
    checks_running = serializers.SerializerMethodField()
    questions = serializers.SerializerMethodField()
    denial_reason = serializers.SerializerMethodField()

    class Meta(RequestSerializer.Meta):
        fields = [*RequestSerializer.Meta.fields, "checks", "checks_running", "questions", "denial_reason"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._summaries: dict[object, VettingSummary] = {}

    def _vetting(self, req: UnblockRequest) -> VettingSummary:
        # Two fields read it: summarize once per request.
        if req.pk not in self._summaries:
            self._summaries[req.pk] = summarize(req, for_staff=False)
        return self._summaries[req.pk]

    @extend_schema_field(CustomerCheckSerializer(many=True))
    def get_checks(self, req: UnblockRequest) -> list[dict[str, Any]]:
        """Customer-visible results of the latest finished run, problems first."""
        return [CustomerCheckSerializer(result).data for result in self._vetting(req).results]

    def get_checks_running(self, req: UnblockRequest) -> bool:
        return self._vetting(req).in_progress

    @extend_schema_field(MessageSerializer(many=True))
    def get_questions(self, req: UnblockRequest) -> list[dict[str, Any]]:
        questions = [m for m in req.messages.visible_to_customer() if m.kind == MessageKind.QUESTION]
        return list(MessageSerializer(questions, many=True).data)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_denial_reason(self, req: UnblockRequest) -> str | None:
        if req.state != State.DENIED:
            return None
        event = (
            AuditEvent.objects.for_object(req).filter(action="request.deny").order_by("-at", "-id").first()
        )
        return event.reason if event is not None else ""


class RequestPageSerializer(serializers.Serializer[dict[str, Any]]):
    """One page of GET /api/v1/requests/ (documents the cursor pagination's envelope)."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    previous = serializers.URLField(allow_null=True)
    results = RequestSerializer(many=True)


class TextSerializer(serializers.Serializer[dict[str, str]]):
    text = StrictCharField(max_length=rules.TEXT_LIMIT)


class ReasonSerializer(serializers.Serializer[dict[str, str]]):
    reason = StrictCharField(max_length=rules.TEXT_LIMIT, required=False, allow_blank=True, default="")
