from __future__ import annotations

import uuid

from django.db import models

from portal.accounts.models import Tenant
from portal.core.blocks import BlockQuerySet, IPBlock


class ExemptionState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class ExemptionQuerySet(BlockQuerySet["Exemption"]):
    def in_force(self) -> ExemptionQuerySet:
        # A suspended exemption still belongs to its tenant: a new request must not duplicate it.
        return self.filter(state__in=(ExemptionState.ACTIVE, ExemptionState.SUSPENDED))


class Exemption(IPBlock):
    """The right to send on TCP port 25 from one address or block."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.PROTECT, related_name="exemptions")
    request = models.ForeignKey(
        "unblock.UnblockRequest", models.PROTECT, null=True, blank=True, related_name="exemptions"
    )
    state = models.CharField(max_length=16, choices=ExemptionState.choices, default=ExemptionState.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)

    objects = ExemptionQuerySet.as_manager()

    class Meta:
        ordering = ["family", "first"]
        indexes = [models.Index(fields=["family", "first", "last"])]
