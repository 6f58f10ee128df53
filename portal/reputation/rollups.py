"""Daily rollups of the network's reputation, the numbers the network page reads.

They are plain numbers: `portal.workflows.network` computes them (it needs exemption state,
which sits above this app) and replaces a day's rows whole, so recomputing a day is idempotent.
A day is a UTC calendar day; an address counts on a day if it was listed at any moment of it.
"""

from __future__ import annotations

from datetime import date

from django.db import models

# Listed on any list that is evidence of abuse (every list but the PBL, which is policy).
ABUSE = "abuse"


class Scope(models.TextChoices):
    NETWORK = "network", "Whole network"
    TENANT = "tenant", "Tenant"
    PREFIX = "prefix", "Allocation prefix"
    RANGE = "range", "Range (/24, or /64 for IPv6)"


class NetworkRollupQuerySet(models.QuerySet["NetworkRollup"]):
    def of(self, scope: str, listname: str = ABUSE) -> NetworkRollupQuerySet:
        return self.filter(scope=scope, listname=listname)

    def between(self, first: date, last: date) -> NetworkRollupQuerySet:
        return self.filter(day__gte=first, day__lte=last)


class NetworkRollup(models.Model):
    """Listed addresses (and complaints) on one day, for one list, in one scope."""

    day = models.DateField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    # "" for the whole network, the tenant's id, the allocation's or the range's CIDR.
    key = models.CharField(max_length=64, blank=True)
    label = models.CharField(max_length=200, blank=True)
    listname = models.CharField(max_length=16)
    listed = models.PositiveIntegerField(default=0)
    # Of the listed addresses, those an active exemption covered while they were listed.
    exempted = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)

    objects = NetworkRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "scope", "key", "listname"], name="one_rollup_per_key")
        ]
        # The page reads one scope and list over a range of days.
        indexes = [models.Index(fields=["scope", "listname", "day"], name="rollup_scope_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.scope} {self.key or '*'} {self.listname}: {self.listed}"

    @property
    def blocked(self) -> int:
        return self.listed - self.exempted


class NetworkDay(models.Model):
    """The whole network's figures for one day that aren't counts per list."""

    day = models.DateField(primary_key=True)
    allocated_addresses = models.PositiveBigIntegerField(default=0)
    # Addresses (an IPv6 exemption counts as one) an active exemption covered at some moment.
    exempted_addresses = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    complaints_on_exempted = models.PositiveIntegerField(default=0)
    # The cohort of exemptions approved this day, and how many were listed within 30 days.
    approved_addresses = models.PositiveIntegerField(default=0)
    listed_within_30_days = models.PositiveIntegerField(default=0)
    # Seconds, one entry per suspension on this day caused by a listing.
    listing_to_suspension = models.JSONField(default=list)
    suspension_to_delisting = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"Network on {self.day}"
