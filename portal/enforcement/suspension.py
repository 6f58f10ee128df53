"""The suspension policy: which abuse signals take an exemption back, and why.

Applying it is the exemption workflow's job (`portal.workflows.exemptions.suspend_for`)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.reputation.models import Kind, ReputationEvent


def reason_to_suspend(event: ReputationEvent) -> str:
    if event.kind == Kind.OVER_VOLUME and settings.TELEMETRY_VOLUME_ACTION in ("suspend", "both"):
        # Sending far beyond what was approved breaches the approval itself, like a listing.
        return f"Volume over approval: {event.summary}"[:500]
    if event.kind == Kind.LISTED and event.abuse:
        lists = {c.get("list", "") for c in event.evidence.get("codes", [])} if event.evidence else set()
        hits = sorted(lists & set(settings.SUSPEND_ON_LISTS))
        if hits or not lists:
            return f"Listed on {', '.join(hits) or event.zone} ({event.zone}): {event.meaning}"[:500]
    if event.kind == Kind.COMPLAINT and event.abuse and event.cidr:
        since = timezone.now() - timedelta(hours=settings.SUSPEND_COMPLAINT_WINDOW_HOURS)
        count = (
            ReputationEvent.objects.about(event.network)
            .filter(kind=Kind.COMPLAINT, abuse=True)
            .since(since)
            .count()
        )
        if count >= settings.SUSPEND_AFTER_COMPLAINTS:
            return (
                f"{count} abuse complaints in {settings.SUSPEND_COMPLAINT_WINDOW_HOURS} hours "
                f"(threshold {settings.SUSPEND_AFTER_COMPLAINTS}); latest: {event.summary}"
            )[:500]
    return ""
