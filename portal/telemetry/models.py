"""Port-25 telemetry: the agents that report, their reports, and per-address hourly counts.

Counts are kept small on purpose: one row per address and hour, whatever the number of agents
and reports that contributed to it (`ingest.upsert_hours`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import ApiKey, Tenant
from portal.core.blocks import BlockQuerySet, IPBlock


class AgentQuerySet(models.QuerySet["Agent"]):
    def stale(self, now: datetime | None = None) -> AgentQuerySet:
        """Agents that have not reported for AGENT_STALE_SECONDS."""
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.AGENT_STALE_SECONDS)
        return self.filter(Q(last_report_at__lt=cutoff) | Q(last_report_at__isnull=True))


class Agent(models.Model):
    """An enforcement agent or flow forwarder, registered by its first report."""

    name = models.CharField(max_length=64, unique=True)
    version = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_report_at = models.DateTimeField(null=True, blank=True)
    last_sequence = models.BigIntegerField(default=0)
    last_interval_end = models.DateTimeField(null=True, blank=True)
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def lag_seconds(self, now: datetime | None = None) -> float | None:
        """How far behind the clock the counts are: now minus the end of the last interval."""
        if self.last_interval_end is None:
            return None
        return max(0.0, ((now or timezone.now()) - self.last_interval_end).total_seconds())

    @property
    def is_stale(self) -> bool:
        if self.last_report_at is None:
            return True
        age = (timezone.now() - self.last_report_at).total_seconds()
        return age > settings.AGENT_STALE_SECONDS


class TelemetryReport(models.Model):
    """One accepted report: the unique (agent, sequence) makes a resent report count once."""

    agent = models.ForeignKey(Agent, models.CASCADE, related_name="reports")
    sequence = models.BigIntegerField()
    source = models.CharField(max_length=16)
    start = models.DateTimeField()
    end = models.DateTimeField()
    estimated = models.BooleanField(default=False)
    addresses = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "sequence"], name="one_report_per_sequence")]

    def __str__(self) -> str:
        return f"{self.agent_id}#{self.sequence}"


class SmtpHourQuerySet(BlockQuerySet["SmtpHour"]):
    def since(self, when: datetime) -> SmtpHourQuerySet:
        return self.filter(hour__gte=when)


class SmtpHour(IPBlock):
    """Port-25 connections from one address in one UTC hour.

    `cidr` is the address itself (a single-address block), so the IP-block look-ups the rest of
    the portal uses (`overlapping`, `covering`) work here too. The tenant is whoever held the
    address when the first count of the hour arrived.
    """

    hour = models.DateTimeField()
    blocked = models.BigIntegerField(default=0)
    accepted = models.BigIntegerField(default=0)
    estimated = models.BooleanField(default=False)
    tenant = models.ForeignKey(Tenant, models.SET_NULL, null=True, blank=True, related_name="+")

    objects = SmtpHourQuerySet.as_manager()

    class Meta:
        ordering = ["hour"]
        constraints = [
            models.UniqueConstraint(fields=["family", "first", "hour"], name="one_row_per_address_hour")
        ]
        # No index on `hour` alone: every index costs on each of a report's 100,000 upserts, and
        # the only reader by hour alone is the hourly retention job.
        indexes = [models.Index(fields=["tenant", "hour"])]

    def __str__(self) -> str:
        return f"{self.cidr} {self.hour:%Y-%m-%d %H}:00 blocked {self.blocked} accepted {self.accepted}"
