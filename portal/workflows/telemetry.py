"""Ingesting a port-25 telemetry report and acting on what it shows.

The counts and the signals they trigger are written in one durable transaction. A signal fires
when a report takes an hour's count across a threshold, which only the upsert that adds the
report can see (it returns the new totals). Evaluating signals afterwards, through an outbox,
would need that crossing to be stored and claimed; in the same transaction it is simply acted
on, and a crash loses nothing: the agent resends the report, which was never committed. It also
means an over-volume suspension, its change-feed row and its webhook deliveries commit with the
counts, so the webhook worker sends them within seconds of the report.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import Actor, ApiKey, Tenant
from portal.audit.log import record
from portal.enforcement.models import Exemption, ExemptionState
from portal.lib.prefixmap import PrefixMap
from portal.notifications.outbox import queue_email
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.reputation.recording import new_event
from portal.telemetry.ingest import Address, HourCount, HourTotal, holders_at, hour_of, span_q, upsert_hours
from portal.telemetry.models import Agent, TelemetryReport
from portal.workflows import exemptions


@dataclass(frozen=True)
class AddressCount:
    address: Address
    blocked: int = 0
    accepted: int = 0
    observed: int = 0  # verdict unknown (flow data): classified by the exemptions in force


@dataclass(frozen=True)
class ReportSpec:
    agent: str
    version: str
    sequence: int
    source: str
    start: datetime
    end: datetime
    estimated: bool
    counts: list[AddressCount]  # one entry per address


@dataclass(frozen=True)
class Outcome:
    sequence: int
    duplicate: bool
    addresses: int
    last_sequence: int
    signals: list[ReputationEvent] = field(default_factory=list)


def ingest_report(*, report: ReportSpec, api_key: ApiKey) -> Outcome:
    actor = Actor(user=api_key.created_by, api_key=api_key)
    with transaction.atomic(durable=True):
        agent = _locked_agent(report.agent)
        if report.sequence <= agent.last_sequence:
            # Sequences only grow: anything at or below the last one was counted already.
            return Outcome(report.sequence, True, 0, agent.last_sequence)
        now = timezone.now()
        TelemetryReport.objects.create(
            agent=agent,
            sequence=report.sequence,
            source=report.source,
            start=report.start,
            end=report.end,
            estimated=report.estimated,
            addresses=len(report.counts),
            received_at=now,
        )
        last_end = max(report.end, agent.last_interval_end) if agent.last_interval_end else report.end
        Agent.objects.filter(pk=agent.pk).update(
            version=report.version,
            source=report.source,
            last_report_at=now,
            last_sequence=report.sequence,
            last_interval_end=last_end,
            api_key=api_key,
        )
        addresses = [c.address for c in report.counts]
        exempted = exemptions_in_force(addresses, report.start, report.end)
        holders = holders_at(addresses, report.start)
        counts = []
        for c in report.counts:
            allowed = exempted.get(c.address) is not None
            counts.append(
                HourCount(
                    address=c.address,
                    blocked=c.blocked + (0 if allowed else c.observed),
                    accepted=c.accepted + (c.observed if allowed else 0),
                    tenant_id=holders.get(c.address),
                )
            )
        # Nothing at or below the lowest threshold can have crossed one.
        over = (settings.TELEMETRY_BLOCKED_PER_HOUR, settings.TELEMETRY_VOLUME_FLOOR)
        totals = upsert_hours(hour_of(report.start), counts, estimated=report.estimated, over=over)
        signals = [
            *_blocked_attempts(totals, exempted, report, actor),
            *_over_volume(totals, exempted, report, actor),
        ]
        return Outcome(report.sequence, False, len(counts), report.sequence, signals)


def _locked_agent(name: str) -> Agent:
    agent, _ = Agent.objects.get_or_create(name=name)
    # One report of an agent at a time: the sequence check and its update must not interleave.
    return Agent.objects.select_for_update().get(pk=agent.pk)


def exemptions_in_force(addresses: list[Address], start: datetime, end: datetime) -> PrefixMap[Exemption]:
    """The exemption that let each address send during [start, end], if any.

    An exemption was active then if it existed by `end` and is active now or stopped being so
    after `start` (a suspension, revocation or expiry during or after the interval).
    """
    found: PrefixMap[Exemption] = PrefixMap()
    if not addresses:
        return found
    rows = (
        Exemption.objects.filter(span_q(addresses), created_at__lte=end)
        .filter(Q(state=ExemptionState.ACTIVE) | Q(state_changed_at__gte=start))
        .select_related("tenant", "request")
        .order_by("-created_at")
    )
    for exemption in rows:
        found.add(exemption.cidr, exemption)
    return found


def volume_limit(exemption: Exemption) -> float:
    """Accepted connections per hour above which an exempted address breaches its approval."""
    declared = exemption.request.expected_daily_volume if exemption.request else None
    scaled = settings.TELEMETRY_VOLUME_FACTOR * declared / 24 if declared else 0
    return max(float(settings.TELEMETRY_VOLUME_FLOOR), scaled)


def _blocked_attempts(
    totals: list[HourTotal], exempted: PrefixMap[Exemption], report: ReportSpec, actor: Actor
) -> list[ReputationEvent]:
    threshold = settings.TELEMETRY_BLOCKED_PER_HOUR
    events = []
    for total in totals:
        if exempted.get(total.address) is not None or not total.crossed("blocked", threshold):
            continue
        event, new_episode = _signal(
            total,
            report,
            actor,
            kind=Kind.BLOCKED_ATTEMPTS,
            summary=(
                f"{total.blocked:,} blocked port-25 connection attempts from {total.cidr} in the hour "
                f"from {total.hour:%Y-%m-%d %H}:00 UTC (threshold {threshold:,})"
            ),
            evidence={"blocked": total.blocked, "threshold": threshold},
        )
        if new_episode and event.tenant_id:
            _tell_tenant(
                event.tenant_id,
                "emails/telemetry_blocked.txt",
                {"address": total.cidr, "count": total.blocked, "hour": total.hour},
            )
        events.append(event)
    return events


def _over_volume(
    totals: list[HourTotal], exempted: PrefixMap[Exemption], report: ReportSpec, actor: Actor
) -> list[ReputationEvent]:
    events = []
    for total in totals:
        exemption = exempted.get(total.address)
        if exemption is None or not total.added_accepted:
            continue
        limit = volume_limit(exemption)
        if not total.crossed("accepted", limit):
            continue
        declared = exemption.request.expected_daily_volume if exemption.request else None
        event, new_episode = _signal(
            total,
            report,
            actor,
            kind=Kind.OVER_VOLUME,
            summary=(
                f"{total.accepted:,} port-25 connections from {total.cidr} in the hour from "
                f"{total.hour:%Y-%m-%d %H}:00 UTC; the approval allows {limit:,.0f} an hour "
                f"({settings.TELEMETRY_VOLUME_FACTOR}× the declared {declared or 0:,} a day / 24, "
                f"at least {settings.TELEMETRY_VOLUME_FLOOR})"
            ),
            evidence={
                "accepted": total.accepted,
                "limit_per_hour": limit,
                "declared_daily_volume": declared,
                "exemption": str(exemption.pk),
                "action": settings.TELEMETRY_VOLUME_ACTION,
            },
        )
        # The suspension policy reads TELEMETRY_VOLUME_ACTION; "notify" leaves the exemption be.
        suspended = exemptions.suspend_for(event)
        if settings.TELEMETRY_VOLUME_ACTION in ("notify", "both") and new_episode and event.tenant_id:
            _tell_tenant(
                event.tenant_id,
                "emails/telemetry_volume.txt",
                {
                    "address": total.cidr,
                    "count": total.accepted,
                    "hour": total.hour,
                    "limit": round(limit),
                    "declared": declared,
                    "suspended": bool(suspended),
                },
            )
        events.append(event)
    return events


def _signal(
    total: HourTotal,
    report: ReportSpec,
    actor: Actor,
    *,
    kind: str,
    summary: str,
    evidence: dict[str, object],
) -> tuple[ReputationEvent, bool]:
    """Store the event; True if it starts a new episode (none of its kind in the quiet hours)."""
    network = ipaddress.ip_network(total.address)
    quiet = timedelta(hours=settings.TELEMETRY_EPISODE_QUIET_HOURS)
    previous = (
        ReputationEvent.objects.about(network)
        .filter(kind=kind, observed_at__gte=total.hour - quiet)
        .order_by("-observed_at")
        .values_list("evidence", flat=True)
        .first()
    )
    episode_start = (previous or {}).get("episode_started", total.hour.isoformat())
    event = new_event(
        network=network,
        source=Source.TELEMETRY,
        kind=kind,
        observed_at=min(report.end, timezone.now()),
        tenant_id=total.tenant_id,
        summary=summary[:500],
        # A hint, not proof: the vetting check and the suspension policy weigh these by kind.
        abuse=False,
        evidence={
            **evidence,
            "hour": total.hour.isoformat(),
            "agent": report.agent,
            "source": report.source,
            "estimated": report.estimated,
            "episode_started": episode_start,
            "tenant_told": previous is None,
        },
        reported_by=actor.label,
    )
    event.save()
    record(
        actor=actor,
        action="reputation.recorded",
        obj=event,
        tenant_id=event.tenant_id,
        after={"source": event.source, "kind": event.kind, "address": event.cidr, "summary": event.summary},
    )
    return event, previous is None


def _tell_tenant(tenant_id: UUID, template: str, context: dict[str, object]) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    members = [m.user.email for m in tenant.memberships.select_related("user")]
    queue_email(to=[*members, tenant.abuse_contact], template=template, context={"tenant": tenant, **context})
