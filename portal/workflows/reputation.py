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
from portal.lib.ipblocks import Network
from portal.reputation.arf import FeedbackReport, parse_arf
from portal.reputation.models import Kind, ListingStatus, ReputationEvent, Source
from portal.reputation.recording import new_event
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
    listed = bool(codes)
    code_values = sorted(c["code"] for c in codes)
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
        network = ipaddress.ip_network(address)
        if listed:
            names = ", ".join(sorted({c.get("list", c["code"]) for c in codes}))
            event = new_event(
                network=network,
                source=Source.DNSBL,
                kind=Kind.LISTED,
                observed_at=observed_at,
                zone=zone,
                code=",".join(code_values),
                meaning="; ".join(c.get("meaning", "") for c in codes)[:300],
                abuse=any(c.get("abuse", True) for c in codes),
                summary=f"Listed on {names} ({zone})",
                evidence={"codes": codes},
            )
        else:
            event = new_event(
                network=network,
                source=Source.DNSBL,
                kind=Kind.DELISTED,
                observed_at=observed_at,
                zone=zone,
                summary=f"No longer listed on {zone}",
            )
        event.save()
        exemptions.suspend_for(event)
        return event
