"""The automated checks. Each returns Findings; none of them raises on a DNS problem."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.accounts.models import Allocation, BillingStanding, Tenant
from portal.lib.dns import Resolver
from portal.lib.ipblocks import Network
from portal.reputation.models import Kind, ReputationEvent
from portal.telemetry.models import SmtpHour
from portal.telemetry.series import total_blocked
from portal.unblock.models import State, UnblockRequest
from portal.vetting import spf
from portal.vetting.findings import ERROR, FAIL, PASS, WARN, Finding
from portal.vetting.policy import blocked_attempt_points

GENERIC_WORDS = re.compile(
    r"(^|[.-])(dynamic|dyn|dhcp|pool|dsl|adsl|cable|ppp|pppoe|dialup|broadband|client|cust|user)[\d.-]",
    re.IGNORECASE,
)


def addresses_of(network: Network) -> Iterator[str]:
    """Every address of a block, up to the configured cap (block sizes are capped anyway)."""
    for count, address in enumerate(network):
        if count >= settings.VETTING_MAX_ADDRESSES_PER_BLOCK:
            return
        yield str(address)


def account_findings(tenant: Tenant) -> list[Finding]:
    age = (timezone.localdate() - tenant.account_opened_on).days
    min_age = settings.VETTING_MIN_ACCOUNT_AGE_DAYS
    min_invoices = settings.VETTING_MIN_PAID_INVOICES
    subject = tenant.external_id
    findings = [
        Finding(
            "account_age",
            subject,
            PASS if age >= min_age else WARN,
            f"Account opened {age} days ago (threshold {min_age})",
            fix="" if age >= min_age else f"Accounts can request port 25 after {min_age} days.",
            evidence={"age_days": age, "threshold_days": min_age},
            score=0 if age >= min_age else 15,
        ),
        Finding(
            "paid_invoices",
            subject,
            PASS if tenant.paid_invoices >= min_invoices else WARN,
            f"{tenant.paid_invoices} paid invoices (threshold {min_invoices})",
            fix=""
            if tenant.paid_invoices >= min_invoices
            else "Port 25 is available after your first paid invoice.",
            evidence={"paid_invoices": tenant.paid_invoices, "threshold": min_invoices},
            score=0 if tenant.paid_invoices >= min_invoices else 15,
        ),
    ]
    verified = tenant.identity_verified or not settings.VETTING_REQUIRE_IDENTITY
    findings.append(
        Finding(
            "identity",
            subject,
            PASS if verified else WARN,
            "Identity verified" if tenant.identity_verified else "Identity not verified",
            fix="" if verified else "Complete identity verification in your account settings.",
            evidence={"identity_verified": tenant.identity_verified},
            score=0 if verified else 20,
        )
    )
    standing = str(tenant.billing_standing)
    good, past_due = BillingStanding.GOOD.value, BillingStanding.PAST_DUE.value
    outcome = {good: PASS, past_due: WARN}.get(standing, FAIL)
    fixes = {good: "", past_due: "Settle the overdue invoices on your account."}
    findings.append(
        Finding(
            "billing_standing",
            subject,
            outcome,
            f"Billing standing: {tenant.get_billing_standing_display().lower()}",
            fix=fixes.get(standing, "Your account is suspended; contact billing support."),
            evidence={"billing_standing": standing},
            score={good: 0, past_due: 25}.get(standing, 100),
            hard=standing == BillingStanding.SUSPENDED,
        )
    )
    return findings


def ownership_finding(tenant: Tenant, network: Network) -> Finding:
    allocation = Allocation.objects.filter(tenant=tenant).active().covering(network).first()
    shown = str(network.network_address) if network.num_addresses == 1 else str(network)
    if allocation is None:
        return Finding(
            "ownership",
            shown,
            FAIL,
            f"{shown} is not inside an active allocation of {tenant.external_id}",
            fix=f"{shown} is no longer allocated to your account; request only addresses you hold.",
            score=100,
            hard=True,
        )
    return Finding(
        "ownership",
        shown,
        PASS,
        f"Inside allocation {allocation.cidr} (assigned {allocation.assigned_at:%Y-%m-%d})",
        evidence={"allocation": allocation.cidr, "assigned_at": allocation.assigned_at.isoformat()},
    )


def rdns_finding(resolver: Resolver, address: str) -> Finding:
    ptr = resolver.ptr(address)
    evidence: dict[str, object] = {"ptr": ptr.as_evidence()}
    if ptr.status == "error":
        return Finding(
            "rdns", address, ERROR, f"Reverse DNS look-up failed: {ptr.error}", evidence=evidence, score=5
        )
    if not ptr.found:
        return Finding(
            "rdns",
            address,
            FAIL,
            "No PTR record",
            fix=f"Set a reverse DNS (PTR) name for {address} that resolves back to it, "
            "e.g. mail.example.com, in your control panel.",
            evidence=evidence,
            score=20,
        )
    hostname = ptr.answers[0]
    a, aaaa = resolver.addresses(hostname)
    evidence["forward"] = [a.as_evidence(), aaaa.as_evidence()]
    forward = set(a.answers) | set(aaaa.answers)
    normalized = {str(ipaddress.ip_address(x)) for x in forward}
    if str(ipaddress.ip_address(address)) not in normalized:
        if a.status == "error" or aaaa.status == "error":
            return Finding(
                "rdns", address, ERROR, f"PTR {hostname}: forward look-up failed", evidence=evidence, score=5
            )
        return Finding(
            "rdns",
            address,
            FAIL,
            f"PTR {hostname} does not resolve back to {address} "
            f"(forward: {', '.join(sorted(forward)) or 'none'})",
            fix=f"Add an A/AAAA record {hostname} → {address}, so that the reverse name is "
            "forward-confirmed.",
            evidence=evidence,
            score=15,
        )
    if is_generic_hostname(hostname, address):
        return Finding(
            "rdns",
            address,
            WARN,
            f"PTR {hostname} is forward-confirmed but looks generic",
            fix=f"Use a reverse name that names your mail server (e.g. mail.example.com), not {hostname}.",
            evidence=evidence,
            score=10,
        )
    return Finding("rdns", address, PASS, f"PTR {hostname}, forward-confirmed", evidence=evidence)


def is_generic_hostname(hostname: str, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if GENERIC_WORDS.search(hostname):
        return True
    name = hostname.lower()
    if ip.version == 4:
        octets = str(ip).split(".")
        forms = ["-".join(octets), ".".join(octets), "_".join(octets), "".join(o.zfill(3) for o in octets)]
        forms += ["-".join(reversed(octets)), ".".join(reversed(octets)), f"{int(ip):08x}"]
        return any(form in name for form in forms)
    return ip.exploded.replace(":", "")[-8:] in name.replace("-", "").replace(".", "")


def spf_finding(resolver: Resolver, domain: str, address: str) -> Finding:
    outcome = spf.evaluate(resolver, domain, address)
    evidence = {
        "result": outcome.result,
        "record": outcome.record,
        "matched": outcome.matched,
        "lookups": outcome.lookups,
        "trail": outcome.trail,
        "reason": outcome.reason,
    }
    subject = f"{domain} / {address}"
    if outcome.result == "pass":
        return Finding(
            "spf",
            subject,
            PASS,
            f"SPF of {domain} authorises {address} ({outcome.matched})",
            evidence=evidence,
        )
    if outcome.result == "temperror":
        return Finding(
            "spf",
            subject,
            ERROR,
            f"SPF of {domain} could not be evaluated: {outcome.reason}",
            evidence=evidence,
            score=5,
        )
    if outcome.result == "none":
        return Finding(
            "spf",
            subject,
            FAIL,
            f"{domain} has no SPF record",
            fix=f"Publish an SPF record for {domain}, e.g. "
            f'"v=spf1 ip{ipaddress.ip_address(address).version}:{address} -all".',
            evidence=evidence,
            score=15,
        )
    if outcome.result == "permerror":
        return Finding(
            "spf",
            subject,
            FAIL,
            f"SPF of {domain} is broken: {outcome.reason}",
            fix=f"Fix the SPF record of {domain}: {outcome.reason}.",
            evidence=evidence,
            score=20,
        )
    return Finding(
        "spf",
        subject,
        FAIL,
        f"SPF of {domain} does not authorise {address} (result: {outcome.result})",
        fix=f"Add ip{ipaddress.ip_address(address).version}:{address} to the SPF record of {domain}.",
        evidence=evidence,
        score=20,
    )


def dmarc_finding(resolver: Resolver, domain: str) -> Finding:
    lookups = []
    for name in _dmarc_names(domain):
        lookup = resolver.txt(f"_dmarc.{name}")
        lookups.append(lookup.as_evidence())
        if lookup.status == "error":
            return Finding(
                "dmarc",
                domain,
                ERROR,
                f"DMARC look-up failed: {lookup.error}",
                evidence={"lookups": lookups},
                score=5,
            )
        records = [t for t in lookup.answers if t.replace(" ", "").lower().startswith("v=dmarc1")]
        if records:
            tags = _dmarc_tags(records[0])
            policy = tags.get("p", "").lower()
            evidence = {
                "lookups": lookups,
                "record": records[0],
                "policy": policy,
                "found_at": f"_dmarc.{name}",
            }
            if policy in ("reject", "quarantine"):
                return Finding("dmarc", domain, PASS, f"DMARC policy p={policy}", evidence=evidence)
            return Finding(
                "dmarc",
                domain,
                WARN,
                f"DMARC policy p={policy or 'missing'} does not protect the domain",
                fix=f"Once SPF and DKIM pass, move the DMARC policy of {domain} to p=quarantine or p=reject.",
                evidence=evidence,
                score=5,
            )
    return Finding(
        "dmarc",
        domain,
        FAIL,
        f"{domain} has no DMARC record",
        fix=f"Publish a DMARC record at _dmarc.{domain}, e.g. "
        f'"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}".',
        evidence={"lookups": lookups},
        score=10,
    )


def _dmarc_names(domain: str) -> list[str]:
    # Without the Public Suffix List the organisational domain is approximated by the last two labels.
    labels = domain.split(".")
    organisational = ".".join(labels[-2:])
    return [domain] if organisational == domain else [domain, organisational]


def _dmarc_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = value.strip()
    return tags


def history_findings(req: UnblockRequest, networks: list[Network], *, revoked: int) -> list[Finding]:
    """`revoked`: how many of the tenant's exemptions were revoked (exemptions sit above vetting)."""
    since = timezone.now() - timedelta(days=settings.REPUTATION_WINDOW_DAYS)
    window = settings.REPUTATION_WINDOW_DAYS
    findings = []
    tenant_events = ReputationEvent.objects.filter(tenant=req.tenant).since(since)
    complaints = tenant_events.filter(kind=Kind.COMPLAINT).count()
    listings = tenant_events.filter(kind=Kind.LISTED, abuse=True).count()
    denied = (
        UnblockRequest.objects.for_tenant(req.tenant).filter(state=State.DENIED).exclude(pk=req.pk).count()
    )
    score = min(complaints * 10, 40) + min(listings * 15, 45) + min(denied * 10, 30) + min(revoked * 25, 50)
    parts = [
        f"{complaints} complaints and {listings} abuse listings in {window} days",
        f"{denied} earlier denied requests",
        f"{revoked} revoked exemptions",
    ]
    findings.append(
        Finding(
            "tenant_history",
            req.tenant.external_id,
            PASS if score == 0 else WARN,
            "; ".join(parts),
            evidence={
                "complaints": complaints,
                "abuse_listings": listings,
                "denied": denied,
                "revoked": revoked,
                "window_days": window,
            },
            score=score,
            staff_only=True,
        )
    )
    for network in networks:
        events = ReputationEvent.objects.about(network).since(since).abuse().select_related("tenant")
        rows = list(events[:50])
        if not rows:
            findings.append(
                Finding(
                    "address_history",
                    str(network),
                    PASS,
                    f"No abuse recorded in {window} days",
                    staff_only=True,
                )
            )
            continue
        previous = [e for e in rows if e.tenant_id != req.tenant_id]
        mine = [e for e in rows if e.tenant_id == req.tenant_id]
        findings.append(
            Finding(
                "address_history",
                str(network),
                WARN,
                f"{len(mine)} abuse events under this tenant, {len(previous)} under previous holders "
                f"in {window} days",
                evidence={
                    "events": [
                        {
                            "observed_at": e.observed_at.isoformat(),
                            "kind": e.kind,
                            "summary": e.summary,
                            "previous_holder": e.tenant_id != req.tenant_id,
                        }
                        for e in rows[:20]
                    ]
                },
                # A previous holder's abuse says little about this tenant, but the address may still
                # carry a poor reputation at mailbox providers.
                score=min(len(mine) * 15, 45) + min(len(previous) * 3, 9),
                staff_only=True,
            )
        )
    return findings


def blocked_attempts_finding(network: Network, filed_at: datetime) -> Finding:
    """Port-25 attempts the firewall blocked from the requested addresses before the request."""
    days = settings.TELEMETRY_VETTING_DAYS
    rows = SmtpHour.objects.overlapping(network)
    last_day = total_blocked(rows, since=filed_at - timedelta(hours=24), until=filed_at)
    last_week = total_blocked(rows, since=filed_at - timedelta(days=days), until=filed_at)
    shown = str(network.network_address) if network.num_addresses == 1 else str(network)
    score = blocked_attempt_points(last_day, last_week)
    if not last_week:
        summary = f"No blocked port-25 attempts in the {days} days before this request"
    else:
        summary = (
            f"{last_day:,} blocked port-25 attempts in the 24 h before this request "
            f"({last_week:,} in {days} days)"
        )
    return Finding(
        "blocked_attempts",
        shown,
        WARN if score else PASS,
        summary,
        evidence={"last_24h": last_day, f"last_{days}d": last_week, "filed_at": filed_at.isoformat()},
        score=score,
        staff_only=True,
    )
