"""Vetting a request: running every check concurrently, storing the results, and applying the
risk policy's route (auto-approve, auto-deny or review) in the same transaction.

A worker that dies after the checks ran but before that transaction committed leaves the run
claimed and unchanged: once its lease lapses another worker runs it again, so a request never
stays without its route.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.enforcement.models import Exemption, ExemptionState
from portal.lib.dns import Resolver
from portal.lib.ipblocks import Network
from portal.reputation.models import ListingStatus
from portal.unblock.models import IllegalTransition, State, UnblockRequest
from portal.vetting import checks, dnsbl
from portal.vetting.findings import ERROR, FAIL, INFO, PASS, Finding
from portal.vetting.models import CheckResult, Route, RunReason, RunState, VettingRun
from portal.vetting.policy import Assessment, assess
from portal.workflows.decisions import approve_in_transaction, deny_in_transaction
from portal.workflows.reputation import record_listing

log = logging.getLogger(__name__)

SYSTEM = Actor.of_system("automated vetting")


def collect_findings(req: UnblockRequest, resolver: Resolver) -> list[Finding]:
    networks = [b.network for b in req.blocks.all()]
    findings = checks.account_findings(req.tenant)
    findings += [checks.ownership_finding(req.tenant, n) for n in networks]
    findings += dns_findings(resolver, networks, list(req.sending_domains))
    record_listings(findings)
    revoked = Exemption.objects.filter(tenant=req.tenant, state=ExemptionState.REVOKED).count()
    findings += checks.history_findings(req, networks, revoked=revoked)
    filed_at = req.submitted_at or timezone.now()
    findings += [checks.blocked_attempts_finding(n, filed_at) for n in networks]
    return findings


def dns_findings(resolver: Resolver, networks: list[Network], domains: list[str]) -> list[Finding]:
    """Every DNS-based check at once: they are independent and each waits mostly on the network."""
    futures: list[Future[Finding]] = []
    zones = dnsbl.ip_zones()
    with ThreadPoolExecutor(max_workers=settings.VETTING_CONCURRENCY) as pool:
        for network in networks:
            for address in checks.addresses_of(network):
                futures.append(pool.submit(checks.rdns_finding, resolver, address))
                futures += [pool.submit(dnsbl.check_address, resolver, address, zone) for zone in zones]
        for domain in domains:
            futures.append(pool.submit(checks.dmarc_finding, resolver, domain))
            futures.append(pool.submit(dnsbl.check_domain, resolver, domain))
            for network in networks:
                futures += [
                    pool.submit(checks.spf_finding, resolver, domain, address)
                    for address in _spf_probes(network)
                ]
        return [future.result() for future in futures]


def _spf_probes(network: Network) -> list[str]:
    # The first and last address of a block: an SPF term authorising both covers the block in
    # every real-world policy, and checking each address would add nothing but lookups.
    first, last = str(network.network_address), str(network.broadcast_address)
    return [first] if first == last else [first, last]


def record_listings(findings: list[Finding]) -> None:
    now = timezone.now()
    for finding in findings:
        if finding.check != "dnsbl" or finding.outcome not in (PASS, INFO, FAIL):
            continue
        zone = str(finding.evidence.get("zone", ""))
        codes: list[dict[str, Any]] = list(finding.evidence.get("codes", []))
        record_listing(address=finding.subject, zone=zone, codes=codes, observed_at=now)
        if codes:
            status = ListingStatus.objects.filter(address=finding.subject, zone=zone).first()
            if status is not None:
                finding.evidence["listed_since"] = status.since.isoformat()


def vet(run: VettingRun) -> Assessment:
    req = UnblockRequest.objects.select_related("tenant").get(pk=run.request_id)
    findings = collect_findings(req, Resolver.from_settings())
    assessment = assess(findings, req.tenant)
    with transaction.atomic(durable=True):
        req = UnblockRequest.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=req.pk)
        CheckResult.objects.bulk_create(
            CheckResult(
                run=run,
                check_name=f.check,
                subject=f.subject[:300],
                outcome=f.outcome,
                summary=f.summary[:1000],
                fix=f.fix[:1000],
                evidence=f.evidence,
                score=f.score,
                hard=f.hard,
                staff_only=f.staff_only,
            )
            for f in findings
        )
        first_run = run.reason == RunReason.SUBMITTED
        route = assessment.route if first_run and req.state == State.SUBMITTED else Route.REVIEW
        route = apply_route(req, route, assessment)
        VettingRun.objects.filter(pk=run.pk).update(
            state=RunState.DONE,
            finished_at=timezone.now(),
            claimed_until=None,
            risk_score=assessment.score,
            risk_band=assessment.band,
            route=route,
            breakdown=assessment.breakdown,
        )
        failing = sorted({f.check for f in findings if f.outcome in (FAIL, ERROR)})
        UnblockRequest.objects.filter(pk=req.pk).update(
            risk_score=assessment.score,
            risk_band=assessment.band,
            vetted_at=timezone.now(),
            failing_checks=f",{','.join(failing)}," if failing else "",
        )
        record(
            actor=SYSTEM,
            action="request.vetted",
            obj=req,
            tenant_id=req.tenant_id,
            after={
                "score": assessment.score,
                "band": assessment.band,
                "route": route,
                "failing": failing,
            },
        )
    return assessment


def apply_route(req: UnblockRequest, route: str, assessment: Assessment) -> str:
    """Decide automatically where the policy says so; the route that was in fact taken."""
    if route not in (Route.AUTO_DENY, Route.AUTO_APPROVE):
        return route
    try:
        with transaction.atomic():
            if route == Route.AUTO_DENY:
                deny_in_transaction(req, actor=SYSTEM, reason=assessment.customer_reason)
            else:
                approve_in_transaction(
                    req, actor=SYSTEM, cidrs=None, expires_at="default", note="All automated checks passed."
                )
    except IllegalTransition:
        # The customer withdrew or a reviewer decided while the checks ran: their decision stands.
        return Route.REVIEW
    except ValidationError:
        # The addresses stopped being grantable while the checks ran: a person decides.
        return Route.REVIEW
    return route


def run_due_vetting(limit: int = 10) -> int:
    done = 0
    lease = timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    for run in VettingRun.objects.due().order_by("created_at")[:limit]:
        if not run.claim(lease):
            continue
        try:
            vet(run)
        except Exception as exc:
            # Give up after a few attempts so that a request whose data breaks a check can't
            # block the queue; reviewers see the failure and can re-check.
            log.exception("vetting run %s failed", run.pk)
            give_up = run.attempts + 1 >= 3
            VettingRun.objects.filter(pk=run.pk).update(
                state=RunState.FAILED if give_up else RunState.PENDING,
                claimed_until=timezone.now() + timedelta(seconds=30),
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            continue
        done += 1
    return done
