from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.unblock.models import UnblockRequest


class Approval(models.Model):
    """One reviewer's approval. Under the four-eyes policy the first one waits for a second."""

    request = models.ForeignKey(UnblockRequest, models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    cidrs = models.JSONField()
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    final = models.BooleanField(default=False)

    class Meta:
        ordering = ["at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="one_approval_per_person"),
        ]

    def __str__(self) -> str:
        return f"{'Final' if self.final else 'First'} approval of {self.request} by {self.approver}"


class DenialReason(models.Model):
    """A canned reason reviewers pick when denying; admins edit them in the Django admin."""

    title = models.CharField(max_length=100, unique=True)
    text = models.TextField(help_text="Shown to the customer. Say what to do to succeed next time.")
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "title"]

    def __str__(self) -> str:
        return self.title
