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

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import Actor, ApiKey, Tenant
from portal.audit.log import record_each
from portal.enforcement.models import Exemption, ExemptionState
from portal.lib.prefixmap import PrefixMap
from portal.notifications.outbox import queue_email
from portal.reputation.models import Kind, ReputationEvent, Source
from portal.telemetry.ingest import (
    HourCounts,
    HourTotal,
    ReportCounts,
    holders_at,
    hour_of,
    span_q,
    upsert_hours,
)
from portal.telemetry.models import Agent, TelemetryReport
from portal.workflows import exemptions


@dataclass(frozen=True)
class ReportSpec:
    agent: str
    version: str
    sequence: int
    source: str
    start: datetime
    end: datetime
    estimated: bool
    counts: ReportCounts  # one position per address


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
        c = report.counts
        exempted = exemptions_in_force(c.families, c.numbers, report.start, report.end)
        find = exempted.get_number
        # Flow counts without a verdict are accepted where an exemption was in force, else blocked.
        allowed = (
            [find(f, n) is not None for f, n in zip(c.families, c.numbers, strict=True)] if exempted else []
        )
        if any(allowed):
            blocked = [b + (0 if a else o) for b, o, a in zip(c.blocked, c.observed, allowed, strict=True)]
            accepted = [b + (o if a else 0) for b, o, a in zip(c.accepted, c.observed, allowed, strict=True)]
        else:
            blocked, accepted = [b + o for b, o in zip(c.blocked, c.observed, strict=True)], c.accepted
        counts = HourCounts(
            c.cidrs, c.families, c.numbers, blocked, accepted, holders_at(c.families, c.numbers, report.start)
        )
        # Nothing at or below the lowest threshold can have crossed one.
        over = (settings.TELEMETRY_BLOCKED_PER_HOUR, settings.TELEMETRY_VOLUME_FLOOR)
        totals = upsert_hours(hour_of(report.start), counts, estimated=report.estimated, over=over)
        signals = [
            *_blocked_attempts(totals, exempted, report, actor),
            *_over_volume(totals, exempted, report, actor),
        ]
        return Outcome(report.sequence, False, len(c), report.sequence, signals)


def _locked_agent(name: str) -> Agent:
    agent, _ = Agent.objects.get_or_create(name=name)
    # One report of an agent at a time: the sequence check and its update must not interleave.
    return Agent.objects.select_for_update().get(pk=agent.pk)


def exemptions_in_force(
    families: list[int], numbers: list[int], start: datetime, end: datetime
) -> PrefixMap[Exemption]:
    """The exemption that let each address send during [start, end], if any.

    An exemption was active then if it existed by `end` and is active now or stopped being so
    after `start` (a suspension, revocation or expiry during or after the interval).
    """
    found: PrefixMap[Exemption] = PrefixMap()
    if not numbers:
        return found
    rows = (
        Exemption.objects.filter(span_q(families, numbers), created_at__lte=end)
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
    signals = []
    for total in totals:
        if exempted.get_number(total.family, total.number) is not None or not total.crossed(
            "blocked", threshold
        ):
            continue
        summary = (
            f"{total.blocked:,} blocked port-25 connection attempts from {total.cidr} in the hour "
            f"from {total.hour:%Y-%m-%d %H}:00 UTC (threshold {threshold:,})"
        )
        signals.append(Signal(total, summary, {"blocked": total.blocked, "threshold": threshold}))
    events = _record(signals, report, actor, kind=Kind.BLOCKED_ATTEMPTS)
    told = _tenants_to_tell(events)
    for signal, event in zip(signals, events, strict=True):
        if event.evidence["tenant_told"] and event.tenant_id:
            total = signal.total
            _tell_tenant(
                told[event.tenant_id],
                "emails/telemetry_blocked.txt",
                {"address": total.cidr, "count": total.blocked, "hour": total.hour},
            )
    return events


def _over_volume(
    totals: list[HourTotal], exempted: PrefixMap[Exemption], report: ReportSpec, actor: Actor
) -> list[ReputationEvent]:
    signals = []
    for total in totals:
        exemption = exempted.get_number(total.family, total.number)
        if exemption is None or not total.added_accepted:
            continue
        limit = volume_limit(exemption)
        if not total.crossed("accepted", limit):
            continue
        declared = exemption.request.expected_daily_volume if exemption.request else None
        summary = (
            f"{total.accepted:,} port-25 connections from {total.cidr} in the hour from "
            f"{total.hour:%Y-%m-%d %H}:00 UTC; the approval allows {limit:,.0f} an hour "
            f"({settings.TELEMETRY_VOLUME_FACTOR}× the declared {declared or 0:,} a day / 24, "
            f"at least {settings.TELEMETRY_VOLUME_FLOOR})"
        )
        evidence: dict[str, object] = {
            "accepted": total.accepted,
            "limit_per_hour": limit,
            "declared_daily_volume": declared,
            "exemption": str(exemption.pk),
            "action": settings.TELEMETRY_VOLUME_ACTION,
        }
        signals.append(Signal(total, summary, evidence, limit=limit, declared=declared))
    events = _record(signals, report, actor, kind=Kind.OVER_VOLUME)
    notify = settings.TELEMETRY_VOLUME_ACTION in ("notify", "both")
    told = _tenants_to_tell(events) if notify else {}
    for signal, event in zip(signals, events, strict=True):
        # The suspension policy reads TELEMETRY_VOLUME_ACTION; "notify" leaves the exemption be.
        suspended = exemptions.suspend_for(event)
        if notify and event.evidence["tenant_told"] and event.tenant_id:
            total = signal.total
            _tell_tenant(
                told[event.tenant_id],
                "emails/telemetry_volume.txt",
                {
                    "address": total.cidr,
                    "count": total.accepted,
                    "hour": total.hour,
                    "limit": round(signal.limit),
                    "declared": signal.declared,
                    "suspended": bool(suspended),
                },
            )
    return events


@dataclass(frozen=True)
class Signal:
    total: HourTotal
    summary: str
    evidence: dict[str, object]
    limit: float = 0
    declared: int | None = None


def _record(signals: list[Signal], report: ReportSpec, actor: Actor, *, kind: str) -> list[ReputationEvent]:
    """Store an event per signal, with its audit row: a few queries however many signals.

    An event starts a new episode (evidence `tenant_told`) if its address has no event of its
    kind in the quiet hours before its hour.
    """
    if not signals:
        return []
    families = [s.total.family for s in signals]
    numbers = [s.total.number for s in signals]
    quiet = timedelta(hours=settings.TELEMETRY_EPISODE_QUIET_HOURS)
    hour = signals[0].total.hour  # a report counts one hour
    previous = _latest_evidence(kind, hour - quiet, families, numbers)
    observed_at = min(report.end, timezone.now())
    holders = holders_at(families, numbers, observed_at)
    events = []
    for signal, before, holder in zip(signals, previous, holders, strict=True):
        total = signal.total
        episode_start = (before or {}).get("episode_started", total.hour.isoformat())
        event = ReputationEvent(
            source=Source.TELEMETRY,
            kind=kind,
            observed_at=observed_at,
            # Whoever held the address when it was observed (as `new_event` attributes events).
            tenant_id=holder if holder is not None else total.tenant_id,
            summary=signal.summary[:500],
            # A hint, not proof: the vetting check and the suspension policy weigh these by kind.
            abuse=False,
            evidence={
                **signal.evidence,
                "hour": total.hour.isoformat(),
                "agent": report.agent,
                "source": report.source,
                "estimated": report.estimated,
                "episode_started": episode_start,
                "tenant_told": before is None,
            },
            reported_by=actor.label,
        )
        event.set_network(total.network)
        events.append(event)
    ReputationEvent.objects.bulk_create(events, batch_size=1000)
    record_each(
        actor=actor,
        action="reputation.recorded",
        entries=[
            (
                event,
                event.tenant_id,
                {"source": event.source, "kind": event.kind, "address": event.cidr, "summary": event.summary},
            )
            for event in events
        ],
    )
    return events


def _latest_evidence(
    kind: str, since: datetime, families: list[int], numbers: list[int]
) -> list[dict[str, Any] | None]:
    """For each address, the evidence of the latest event of `kind` about it since `since`."""
    rows = (
        ReputationEvent.objects.filter(kind=kind, observed_at__gte=since)
        .filter(span_q(families, numbers))
        .order_by("-observed_at", "-id")
        .values_list("family", "first", "last", "evidence")
    )
    # Telemetry events are about single addresses: those are found by key; events about wider
    # blocks (rare) by a scan, keeping whichever is later (lower rank).
    single: dict[tuple[int, int], tuple[int, dict[str, Any]]] = {}
    wider: list[tuple[int, int, int, int, dict[str, Any]]] = []
    for rank, (family, first, last, evidence) in enumerate(rows):
        if first == last:
            single.setdefault((family, int(first, 16)), (rank, evidence))
        else:
            wider.append((rank, family, int(first, 16), int(last, 16), evidence))
    found: list[dict[str, Any] | None] = []
    for family, number in zip(families, numbers, strict=True):
        latest = single.get((family, number))
        for rank, of_family, low, high, evidence in wider:
            if of_family == family and low <= number <= high:
                if latest is None or rank < latest[0]:
                    latest = (rank, evidence)
                break
        found.append(None if latest is None else latest[1])
    return found


def _tenants_to_tell(events: list[ReputationEvent]) -> dict[UUID, Tenant]:
    """The tenants of the events that start an episode, with their members, in two queries."""
    ids = {e.tenant_id for e in events if e.evidence["tenant_told"] and e.tenant_id}
    if not ids:
        return {}
    return {t.pk: t for t in Tenant.objects.filter(pk__in=ids).prefetch_related("memberships__user")}


def _tell_tenant(tenant: Tenant, template: str, context: dict[str, object]) -> None:
    members = [m.user.email for m in tenant.memberships.all()]
    queue_email(to=[*members, tenant.abuse_contact], template=template, context={"tenant": tenant, **context})
