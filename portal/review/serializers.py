from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.enforcement.models import Exemption
from portal.lib.ipblocks import BlockError, parse_block
from portal.ops.api_fields import StrictCharField
from portal.review.forms import staff_users
from portal.review.models import Approval
from portal.review.policy import four_eyes_reasons
from portal.unblock.models import Message, UnblockRequest
from portal.unblock.rules import TEXT_LIMIT
from portal.vetting.models import CheckResult, VettingRun
from portal.vetting.summary import summarize


class QueueItemSerializer(serializers.ModelSerializer[UnblockRequest]):
    tenant = serializers.CharField(source="tenant.external_id", help_text="The tenant's external id.")
    tenant_name = serializers.CharField(source="tenant.name")
    addresses = serializers.SerializerMethodField()
    failing_checks = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()

    class Meta:
        model = UnblockRequest
        fields = [
            "id",
            "reference",
            "tenant",
            "tenant_name",
            "state",
            "addresses",
            "use_case",
            "risk_score",
            "risk_band",
            "failing_checks",
            "assignee",
            "submitted_at",
            "state_changed_at",
        ]

    def get_addresses(self, req: UnblockRequest) -> list[str]:
        return [b.cidr for b in req.blocks.all()]

    def get_failing_checks(self, req: UnblockRequest) -> list[str]:
        return [c for c in req.failing_checks.split(",") if c]

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_assignee(self, req: UnblockRequest) -> str | None:
        return req.assignee.email if req.assignee else None


class QueuePageSerializer(serializers.Serializer[dict[str, Any]]):
    """One page of GET /api/v1/review/requests (documents the cursor pagination's envelope)."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    previous = serializers.URLField(allow_null=True)
    results = QueueItemSerializer(many=True)


class CheckResultSerializer(serializers.ModelSerializer[CheckResult]):
    check = serializers.CharField(source="check_name")
    title = serializers.CharField()

    class Meta:
        model = CheckResult
        fields = [
            "check",
            "title",
            "subject",
            "outcome",
            "summary",
            "fix",
            "evidence",
            "score",
            "hard",
            "staff_only",
        ]


class VettingRunSerializer(serializers.ModelSerializer[VettingRun]):
    class Meta:
        model = VettingRun
        fields = [
            "id",
            "reason",
            "requested_by",
            "finished_at",
            "risk_score",
            "risk_band",
            "route",
            "breakdown",
        ]


class VettingSerializer(serializers.Serializer[Any]):
    in_progress = serializers.BooleanField(help_text="A run is pending or running; poll again.")
    latest = VettingRunSerializer(
        allow_null=True, help_text="The latest finished run, with the risk breakdown."
    )
    results = CheckResultSerializer(many=True, help_text="The latest finished run's check results.")


class StaffMessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ["id", "kind", "author_label", "body", "internal", "created_at"]


class ApprovalSerializer(serializers.ModelSerializer[Approval]):
    approver = serializers.EmailField(source="approver.email")

    class Meta:
        model = Approval
        fields = ["approver", "at", "cidrs", "expires_at", "note", "final"]


class ReviewRequestSerializer(QueueItemSerializer):
    sending_domains = serializers.ListField(child=serializers.CharField())
    four_eyes = serializers.SerializerMethodField(
        help_text="Why two approvals are needed (empty: one reviewer's approval decides)."
    )
    approvals = ApprovalSerializer(many=True)
    messages = StaffMessageSerializer(many=True, help_text="The conversation, with internal notes.")
    vetting = serializers.SerializerMethodField()

    class Meta(QueueItemSerializer.Meta):
        fields = [
            *QueueItemSerializer.Meta.fields,
            "justification",
            "mail_software",
            "sending_domains",
            "expected_daily_volume",
            "bounce_handling",
            "abuse_contact",
            "created_at",
            "decided_at",
            "four_eyes",
            "approvals",
            "messages",
            "vetting",
        ]

    def get_four_eyes(self, req: UnblockRequest) -> list[str]:
        return four_eyes_reasons(req)

    @extend_schema_field(VettingSerializer)
    def get_vetting(self, req: UnblockRequest) -> Any:
        return VettingSerializer(summarize(req, for_staff=True)).data


class ApprovedExemptionSerializer(serializers.ModelSerializer[Exemption]):
    class Meta:
        model = Exemption
        fields = ["id", "cidr", "expires_at"]


class ApprovalOutcomeSerializer(serializers.Serializer[Any]):
    final = serializers.BooleanField(
        help_text="false: a first approval under four-eyes; the request waits for a second one."
    )
    waiting_for = serializers.CharField(help_text="Who must approve next, when final is false.")
    exemptions = ApprovedExemptionSerializer(many=True, help_text="One per approved address, when final.")
    request = ReviewRequestSerializer()


class ApproveSerializer(serializers.Serializer[dict[str, Any]]):
    cidrs = serializers.ListField(
        child=StrictCharField(max_length=64),
        required=False,
        allow_empty=False,
        help_text="The addresses to approve, a subset of the request's; all of them when left out.",
    )
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=f"When the exemptions end; {settings.EXEMPTION_DEFAULT_DAYS} days from now when left "
        "out, never when null (approvers only).",
    )
    note = StrictCharField(max_length=TEXT_LIMIT, required=False, allow_blank=True, default="")

    def validate_cidrs(self, value: list[str]) -> list[str]:
        req: UnblockRequest = self.context["req"]
        mine = {b.network: b.cidr for b in req.blocks.all()}
        chosen: list[str] = []
        for text in value:
            try:
                network = parse_block(text)
            except BlockError as exc:
                raise serializers.ValidationError(str(exc)) from None
            if network not in mine:
                raise serializers.ValidationError(
                    f"{text} is not one of this request's addresses ({', '.join(mine.values())})."
                )
            chosen.append(mine[network])
        return list(dict.fromkeys(chosen))

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry must be in the future.")
        return value

    def chosen_expiry(self) -> datetime | None:
        if "expires_at" not in self.validated_data:
            return timezone.now() + timedelta(days=settings.EXEMPTION_DEFAULT_DAYS)
        value: datetime | None = self.validated_data["expires_at"]
        return value


class DenySerializer(serializers.Serializer[dict[str, str]]):
    reason = StrictCharField(max_length=TEXT_LIMIT, help_text="Shown to the customer.")


class QuestionSerializer(serializers.Serializer[dict[str, str]]):
    question = StrictCharField(max_length=TEXT_LIMIT, help_text="Shown to the customer.")


class AssignSerializer(serializers.Serializer[dict[str, Any]]):
    assignee = serializers.EmailField(
        allow_null=True, help_text="The email of a reviewer, approver or admin; null releases the request."
    )

    def validate_assignee(self, value: str | None) -> User | None:
        if value is None:
            return None
        user: User | None = staff_users().filter(email__iexact=value).first()
        if user is None:
            raise serializers.ValidationError(f"No active reviewer, approver or admin has the email {value}.")
        return user
