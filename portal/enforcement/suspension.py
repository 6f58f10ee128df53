"""The suspension policy: abuse signals take exemptions back, in the transaction that recorded
the signal, so that the suspension webhook is on its way as soon as the signal is stored."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.accounts.models import Actor
from portal.enforcement.actions import move
from portal.enforcement.models import Exemption
from portal.reputation.models import Kind, ReputationEvent

SYSTEM = Actor.of_system("suspension policy")


def reason_to_suspend(event: ReputationEvent) -> str:
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


def apply_policy(event: ReputationEvent) -> list[Exemption]:
    """Suspend the active exemptions covering the event's address if the policy says so.

    Call inside the transaction that saved the event.
    """
    if not event.cidr:
        return []
    reason = reason_to_suspend(event)
    if not reason:
        return []
    suspended = []
    for exemption in Exemption.objects.active().overlapping(event.network).select_related("tenant"):
        if move(exemption, "exemption.suspended", actor=SYSTEM, reason=reason):
            suspended.append(exemption)
    return suspended
