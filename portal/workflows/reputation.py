"""Reputation signals: events from the abuse desk, feeds and ARF reports, and DNSBL listing
transitions. Each is stored together with what the suspension policy does about it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor, Tenant
from portal.audit.log import record
from portal.enforcement.models import Exemption
from portal.lib.blockindex import BlockIndex
from portal.lib.ipblocks import Network
from portal.reputation.arf import FeedbackReport, parse_arf
from portal.reputation.models import Kind, ListingStatus, ReputationEvent, Source
from portal.reputation.recording import holder_index, new_event
from portal.workflows import exemptions


@dataclass
class EventSpec:
    source: str
    kind: str
    network: Network | None = None
    tenant: Tenant | None = None
    observed_at: datetime | None = None
    zone: str = ""
    code: str = ""
    meaning: str = ""
    summary: str = ""
    link: str = ""
    abuse: bool | None = None
    evidence: dict[str, Any] | None = None


def ingest_event(*, spec: EventSpec, actor: Actor) -> ReputationEvent:
    with transaction.atomic(durable=True):
        event = new_event(
            network=spec.network,
            source=spec.source,
            kind=spec.kind,
            observed_at=spec.observed_at or timezone.now(),
            tenant_id=spec.tenant.pk if spec.tenant else None,
            zone=spec.zone,
            code=spec.code,
            meaning=spec.meaning,
            summary=spec.summary,
            link=spec.link,
            abuse=spec.abuse if spec.abuse is not None else spec.kind in (Kind.COMPLAINT, Kind.LISTED),
            evidence=spec.evidence or {},
            reported_by=actor.label,
        )
        event.save()
        exemptions.suspend_for(event)
        record(
            actor=actor,
            action="reputation.recorded",
            obj=event,
            tenant_id=event.tenant_id,
            after={
                "source": event.source,
                "kind": event.kind,
                "address": event.cidr,
                "summary": event.summary,
            },
        )
        return event


def ingest_arf(*, raw: bytes, actor: Actor) -> ReputationEvent:
    """Parse an ARF report and record it as a complaint; raises ArfError and stores nothing if bad."""
    report = parse_arf(raw)
    return ingest_event(
        spec=EventSpec(
            # Feedback loops send machine-generated "abuse" reports; everything else is a report.
            source=Source.FEEDBACK_LOOP if report.feedback_type == "abuse" else Source.ABUSE_REPORT,
            kind=Kind.COMPLAINT,
            network=ipaddress.ip_network(report.source_ip),
            observed_at=report.arrival_date,
            code=report.feedback_type,
            meaning=f"{report.feedback_type} report from {report.reporting_mta or report.user_agent}"[:300],
            summary=_summary(report),
            evidence={
                "feedback_type": report.feedback_type,
                "user_agent": report.user_agent,
                "reporting_mta": report.reporting_mta,
                "original_mail_from": report.original_mail_from,
                "reported_domains": report.reported_domains,
                "subject": report.subject,
            },
            abuse=report.feedback_type in ("abuse", "fraud", "virus"),
        ),
        actor=actor,
    )


def _summary(report: FeedbackReport) -> str:
    sender = report.original_mail_from or "unknown sender"
    subject = f" “{report.subject}”" if report.subject else ""
    return f"{report.feedback_type.capitalize()} complaint about mail from {sender}{subject}"[:500]


def record_listing(
    *, address: str, zone: str, codes: list[dict[str, Any]], observed_at: datetime
) -> ReputationEvent | None:
    """Store the DNSBL state of an address and write an event only when it changed."""
    codes = sorted(codes, key=_code_key)
    listed = bool(codes)
    code_values = [c["code"] for c in codes]
    with transaction.atomic():
        status, created = ListingStatus.objects.select_for_update().get_or_create(
            address=address,
            zone=zone,
            defaults={
                "listed": listed,
                "codes": code_values,
                "since": observed_at,
                "checked_at": observed_at,
            },
        )
        changed = (created and listed) or (
            not created and (status.listed != listed or (listed and status.codes != code_values))
        )
        if not created:
            if changed:
                status.listed, status.codes, status.since = listed, code_values, observed_at
            status.checked_at = observed_at
            status.save()
        if not changed:
            return None
        event = new_event(
            network=ipaddress.ip_network(address), observed_at=observed_at, **_listing_fields(zone, codes)
        )
        event.save()
        exemptions.suspend_for(event)
        return event


@dataclass(frozen=True)
class Observation:
    """What one source says about one address (or, for IPv6 zone files, one CIDR block)."""

    address: str
    codes: list[dict[str, Any]]  # [] when not listed; each as in DNSBL findings' evidence


def record_listing_batch(
    *,
    zone: str,
    observations: list[Observation],
    observed_at: datetime,
    holders: BlockIndex[Any] | None = None,
) -> list[ReputationEvent]:
    """`record_listing` for many addresses at once: one transaction, a few queries whatever the
    batch size, the same statuses and events, and the suspension policy applied to each event.
    `holders` (`holder_index(observed_at)`) saves reading the allocations again for each batch."""
    with transaction.atomic(durable=True):
        by_address = {o.address: o for o in observations}
        existing = {
            s.address: s
            for s in ListingStatus.objects.select_for_update().filter(zone=zone, address__in=list(by_address))
        }
        created, updated, unchanged, changed = [], [], [], []
        for address, observation in by_address.items():
            codes = sorted(observation.codes, key=_code_key)
            values = [c["code"] for c in codes]
            status = existing.get(address)
            if status is None:
                created.append(
                    ListingStatus(
                        address=address,
                        zone=zone,
                        listed=bool(codes),
                        codes=values,
                        since=observed_at,
                        checked_at=observed_at,
                    )
                )
                if codes:
                    changed.append((address, codes))
            elif status.listed != bool(codes) or (codes and status.codes != values):
                status.listed, status.codes, status.since = bool(codes), values, observed_at
                status.checked_at = observed_at
                updated.append(status)
                changed.append((address, codes))
            else:
                unchanged.append(status.pk)
        ListingStatus.objects.bulk_create(created, batch_size=1000)
        fields = ["listed", "codes", "since", "checked_at"]
        ListingStatus.objects.bulk_update(updated, fields, batch_size=1000)
        for start in range(0, len(unchanged), 1000):
            batch = unchanged[start : start + 1000]
            ListingStatus.objects.filter(pk__in=batch).update(checked_at=observed_at)
        events = _listing_events(zone, changed, observed_at, holders)
        ReputationEvent.objects.bulk_create(events, batch_size=1000)
        exempted = _exempted_index() if any(e.kind == Kind.LISTED for e in events) else None
        for event in events:
            if exempted is not None and event.kind == Kind.LISTED and _overlaps(exempted, event):
                exemptions.suspend_for(event)
        return events


def _listing_events(
    zone: str,
    changed: list[tuple[str, list[dict[str, Any]]]],
    observed_at: datetime,
    holders: BlockIndex[Any] | None,
) -> list[ReputationEvent]:
    if holders is None and changed:
        holders = holder_index(observed_at)
    events = []
    for address, codes in changed:
        network = ipaddress.ip_network(address)
        event = ReputationEvent(observed_at=observed_at, **_listing_fields(zone, codes))
        event.set_network(network)
        if holders is not None:
            held_by = holders.covering(network.version, *_span(network))
            event.tenant_id = held_by[0] if held_by else None
        events.append(event)
    return events


def _exempted_index() -> BlockIndex[None]:
    rows = Exemption.objects.active().values_list("family", "first", "last")
    return BlockIndex.of((family, int(first, 16), int(last, 16), None) for family, first, last in rows)


def _overlaps(index: BlockIndex[None], event: ReputationEvent) -> bool:
    return index.overlaps(event.family, int(event.first, 16), int(event.last, 16))


def _span(network: Network) -> tuple[int, int]:
    return int(network.network_address), int(network.broadcast_address)


def _code_key(code: dict[str, Any]) -> str:
    # The order statuses have always been stored in, so that DNS answers in any order compare equal.
    return str(code["code"])


def _listing_fields(zone: str, codes: list[dict[str, Any]]) -> dict[str, Any]:
    if not codes:
        return {
            "source": Source.DNSBL,
            "kind": Kind.DELISTED,
            "zone": zone,
            "summary": f"No longer listed on {zone}",
        }
    names = ", ".join(sorted({c.get("list", c["code"]) for c in codes}))
    return {
        "source": Source.DNSBL,
        "kind": Kind.LISTED,
        "zone": zone,
        "code": ",".join(c["code"] for c in codes),
        "meaning": "; ".join(c.get("meaning", "") for c in codes)[:300],
        "abuse": any(c.get("abuse", True) for c in codes),
        "summary": f"Listed on {names} ({zone})",
        "evidence": {"codes": codes},
    }
