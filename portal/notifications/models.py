from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EmailState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundEmailQuerySet(models.QuerySet["OutboundEmail"]):
    def due(self) -> OutboundEmailQuerySet:
        now = timezone.now()
        return self.filter(state=EmailState.PENDING, next_attempt_at__lte=now).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )


class OutboundEmail(models.Model):
    """An email waiting in the outbox. Written in the transaction that caused it."""

    to = models.JSONField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    state = models.CharField(max_length=8, choices=EmailState.choices, default=EmailState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = OutboundEmailQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outboundemail_pending",
                condition=Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"

    def claim(self, lease: timedelta) -> bool:
        """Take this row for one worker; False if another worker holds it or it is done."""
        now = timezone.now()
        claimed = (
            OutboundEmail.objects.filter(pk=self.pk, state=EmailState.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=now + lease, attempts=models.F("attempts") + 1)
        )
        return claimed == 1
