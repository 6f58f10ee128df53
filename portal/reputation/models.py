from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from portal.accounts.models import Allocation, Tenant
from portal.core.blocks import BlockQuerySet, IPBlock
from portal.lib.ipblocks import Network


class Source(models.TextChoices):
    DNSBL = "dnsbl", "DNS blocklist"
    ABUSE_REPORT = "abuse_report", "Abuse report"
    FEEDBACK_LOOP = "feedback_loop", "Feedback loop"
    MANUAL = "manual", "Manual note"


class Kind(models.TextChoices):
    LISTED = "listed", "Listed"
    DELISTED = "delisted", "No longer listed"
    COMPLAINT = "complaint", "Complaint"
    NOTE = "note", "Note"


class ReputationEventQuerySet(BlockQuerySet["ReputationEvent"]):
    def since(self, when: datetime) -> ReputationEventQuerySet:
        return self.filter(observed_at__gte=when)

    def about(self, network: Network) -> ReputationEventQuerySet:
        return self.overlapping(network)

    def abuse(self) -> ReputationEventQuerySet:
        return self.filter(Q(kind=Kind.COMPLAINT) | Q(kind=Kind.LISTED, abuse=True))


class ReputationEvent(IPBlock):
    """Something observed about an address (or block) and/or a tenant.

    The tenant is the one that held the address when it was observed, so that a recycled
    address doesn't blame its new holder.
    """

    source = models.CharField(max_length=16, choices=Source.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    zone = models.CharField(max_length=100, blank=True)
    code = models.CharField(max_length=64, blank=True)
    meaning = models.CharField(max_length=300, blank=True)
    abuse = models.BooleanField(default=False, help_text="Counts as evidence of abuse (PBL does not).")
    observed_at = models.DateTimeField(db_index=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
    tenant = models.ForeignKey(
        Tenant, models.SET_NULL, null=True, blank=True, related_name="reputation_events"
    )
    summary = models.CharField(max_length=500, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    link = models.URLField(blank=True)
    reported_by = models.CharField(max_length=200, blank=True)

    objects = ReputationEventQuerySet.as_manager()

    class Meta:
        ordering = ["-observed_at", "-id"]
        indexes = [
            models.Index(fields=["family", "first", "last"]),
            models.Index(fields=["tenant", "observed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.cidr or self.tenant} ({self.get_source_display()})"


class ListingStatus(models.Model):
    """The last known DNSBL state of one address on one zone, so that checks record changes."""

    address = models.CharField(max_length=45)
    zone = models.CharField(max_length=200)
    listed = models.BooleanField(default=False)
    codes = models.JSONField(default=list)
    since = models.DateTimeField()
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "zone"], name="one_status_per_zone")]

    def __str__(self) -> str:
        return f"{self.address} on {self.zone}: {'listed' if self.listed else 'not listed'}"


def holder_at(network: Network, when: datetime) -> Tenant | None:
    allocation = Allocation.objects.held_at(when).covering(network).select_related("tenant").first()
    return allocation.tenant if allocation else None
