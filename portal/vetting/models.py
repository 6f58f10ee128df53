from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.unblock.models import UnblockRequest
from portal.vetting.findings import CHECK_TITLES, ERROR

CUSTOMER_ERROR_TEXT = "We could not check this; a reviewer will."
BLOCKLIST_ERROR_HINT = (
    "Point DNS_NAMESERVERS at your own recursive resolver or use a DQS key (SPAMHAUS_DQS_KEY): "
    "Spamhaus refuses public resolvers and rate-limits busy ones. Then run the checks again."
)
DNS_ERROR_HINT = "Check that the resolver in DNS_NAMESERVERS answers, then run the checks again."


class RunState(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RunReason(models.TextChoices):
    SUBMITTED = "submitted", "Request submitted"
    CUSTOMER_RECHECK = "customer_recheck", "Re-check asked by the customer"
    STAFF_RECHECK = "staff_recheck", "Re-check asked by a reviewer"


class Route(models.TextChoices):
    AUTO_DENY = "auto_deny", "Denied automatically"
    AUTO_APPROVE = "auto_approve", "Approved automatically"
    REVIEW = "review", "Review queue"


class RiskBand(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class VettingRunQuerySet(models.QuerySet["VettingRun"]):
    def due(self) -> VettingRunQuerySet:
        now = timezone.now()
        return self.filter(state__in=(RunState.PENDING, RunState.RUNNING)).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )

    def finished(self) -> VettingRunQuerySet:
        return self.filter(state=RunState.DONE)


class VettingRun(models.Model):
    """One pass of every check over a request; also the worker's outbox row for it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(UnblockRequest, models.CASCADE, related_name="vetting_runs")
    reason = models.CharField(max_length=20, choices=RunReason.choices)
    requested_by = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    risk_score = models.PositiveIntegerField(null=True, blank=True)
    risk_band = models.CharField(max_length=8, choices=RiskBand.choices, blank=True)
    route = models.CharField(max_length=16, choices=Route.choices, blank=True)
    breakdown = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    objects = VettingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"], name="vettingrun_due", condition=Q(state__in=["pending", "running"])
            ),
            models.Index(fields=["request", "state", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"Vetting of {self.request} ({self.get_state_display().lower()})"

    def claim(self, lease: timedelta) -> bool:
        now = timezone.now()
        claimed = (
            VettingRun.objects.filter(pk=self.pk, state__in=(RunState.PENDING, RunState.RUNNING))
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(
                state=RunState.RUNNING,
                claimed_until=now + lease,
                started_at=now,
                attempts=models.F("attempts") + 1,
            )
        )
        return claimed == 1


class CheckResultQuerySet(models.QuerySet["CheckResult"]):
    def visible_to_customer(self) -> CheckResultQuerySet:
        return self.filter(staff_only=False)

    def problems(self) -> CheckResultQuerySet:
        return self.filter(outcome__in=("warn", "fail", "error"))


class CheckResult(models.Model):
    run = models.ForeignKey(VettingRun, models.CASCADE, related_name="results")
    check_name = models.CharField(max_length=32)
    subject = models.CharField(max_length=300)
    outcome = models.CharField(max_length=8)
    summary = models.CharField(max_length=1000)
    fix = models.CharField(max_length=1000, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    score = models.PositiveIntegerField(default=0)
    hard = models.BooleanField(default=False)
    staff_only = models.BooleanField(default=False)

    objects = CheckResultQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.check_name} {self.subject}: {self.outcome}"

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.check_name, self.check_name)

    # An error is a look-up that got no usable answer: the customer can't fix that, and the
    # error text names our resolver setup (e.g. "point DNS_NAMESERVERS at ..."), which is advice
    # for the operator. Customers are told a person will look instead.
    @property
    def customer_summary(self) -> str:
        return CUSTOMER_ERROR_TEXT if self.outcome == ERROR else self.summary

    @property
    def customer_fix(self) -> str:
        return "" if self.outcome == ERROR else self.fix

    @property
    def operator_hint(self) -> str:
        """What the operator can do about an error, for staff pages; blank otherwise."""
        if self.outcome != ERROR:
            return ""
        return BLOCKLIST_ERROR_HINT if self.check_name in ("dnsbl", "dbl") else DNS_ERROR_HINT
