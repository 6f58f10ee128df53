from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from portal.accounts.models import Allocation, Tenant
from portal.core.blocks import BlockQuerySet, IPBlock
from portal.lib.ipblocks import Network
from portal.reputation.rollups import NetworkDay, NetworkRollup  # noqa: F401 - registers the rollup models


class Source(models.TextChoices):
    DNSBL = "dnsbl", "DNS blocklist"
    ABUSE_REPORT = "abuse_report", "Abuse report"
    FEEDBACK_LOOP = "feedback_loop", "Feedback loop"
    MANUAL = "manual", "Manual note"
    TELEMETRY = "telemetry", "Port-25 telemetry"


class Kind(models.TextChoices):
    LISTED = "listed", "Listed"
    DELISTED = "delisted", "No longer listed"
    COMPLAINT = "complaint", "Complaint"
    NOTE = "note", "Note"
    BLOCKED_ATTEMPTS = "blocked_attempts", "Blocked sending attempts"
    OVER_VOLUME = "over_volume", "Volume over approval"


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
        # The network page's "most recently listed" and "longest listed" read the ends of this.
        indexes = [models.Index(fields=["since"], name="listed_since", condition=Q(listed=True))]

    def __str__(self) -> str:
        return f"{self.address} on {self.zone}: {'listed' if self.listed else 'not listed'}"


def holder_at(network: Network, when: datetime) -> Tenant | None:
    allocation = Allocation.objects.held_at(when).covering(network).select_related("tenant").first()
    return allocation.tenant if allocation else None


class SourceKind(models.TextChoices):
    DNS = "dns", "DNS look-ups"
    ZONE_FILE = "zone_file", "Zone file"


class ListingSource(models.Model):
    """One way the portal learns a zone's listings, and how well it is doing: a monitor that
    cannot see must say so rather than report a clean network."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    zone = models.CharField(max_length=200)
    interval_seconds = models.PositiveIntegerField(help_text="How often a complete pass is expected.")
    created_at = models.DateTimeField(auto_now_add=True)
    # The pass under way (DNS: slices until every address was checked; zone file: one import).
    pass_started_at = models.DateTimeField(null=True, blank=True)
    pass_errors = models.PositiveIntegerField(default=0)
    last_pass_started_at = models.DateTimeField(null=True, blank=True)
    last_pass_finished_at = models.DateTimeField(null=True, blank=True)
    addresses_checked = models.BigIntegerField(default=0)
    addresses_allocated = models.BigIntegerField(default=0)
    errors_last_pass = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    path = models.CharField(max_length=500, blank=True)
    file_mtime = models.DateTimeField(null=True, blank=True)
    file_serial = models.CharField(max_length=40, blank=True)
    file_entries = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["zone", "kind"]

    def __str__(self) -> str:
        return self.name

    @property
    def coverage(self) -> float | None:
        if not self.addresses_allocated:
            return None
        return self.addresses_checked / self.addresses_allocated
