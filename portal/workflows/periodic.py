"""Jobs that run on a schedule. Each due time is claimed by one worker with a conditional
UPDATE, so a job runs once per due time however many workers there are."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor
from portal.enforcement.models import Exemption, PeriodicJob
from portal.enforcement.webhooks import disable_failing_endpoints
from portal.lib.dns import Resolver
from portal.vetting import dnsbl
from portal.vetting.checks import addresses_of
from portal.vetting.findings import FAIL, INFO, PASS, Finding
from portal.workflows.exemptions import move
from portal.workflows.reputation import record_listing

log = logging.getLogger(__name__)
EXPIRY = Actor.of_system("expiry")


def expire_exemptions() -> int:
    count = 0
    for exemption in Exemption.objects.due_to_expire().select_related("tenant")[:1000]:
        with transaction.atomic():
            if move(exemption, "exemption.expired", actor=EXPIRY, reason="Reached its expiry time."):
                count += 1
    return count


def monitor_dnsbl() -> int:
    """Check every address with an exemption in force against the zones; record transitions
    (which apply the suspension policy)."""
    resolver = Resolver.from_settings()
    zones = dnsbl.ip_zones()
    addresses = sorted(
        {a for e in Exemption.objects.in_force().only("cidr") for a in addresses_of(e.network)}
    )
    checks = [(a, z) for a in addresses for z in zones]
    with ThreadPoolExecutor(max_workers=settings.VETTING_CONCURRENCY) as pool:
        findings: list[Finding] = list(pool.map(lambda az: dnsbl.check_address(resolver, *az), checks))
    now = timezone.now()
    for finding in findings:
        if finding.outcome in (PASS, INFO, FAIL):
            record_listing(
                address=finding.subject,
                zone=str(finding.evidence.get("zone", "")),
                codes=list(finding.evidence.get("codes", [])),
                observed_at=now,
            )
    return len(findings)


def schedule() -> dict[str, tuple[timedelta, Callable[[], int]]]:
    return {
        "expire_exemptions": (timedelta(seconds=settings.EXPIRY_CHECK_SECONDS), expire_exemptions),
        "monitor_dnsbl": (timedelta(minutes=settings.DNSBL_MONITOR_MINUTES), monitor_dnsbl),
        "disable_failing_endpoints": (timedelta(minutes=10), disable_failing_endpoints),
    }


def claim(name: str, interval: timedelta) -> bool:
    PeriodicJob.objects.get_or_create(name=name)
    now = timezone.now()
    return (
        PeriodicJob.objects.filter(name=name, next_run_at__lte=now).update(
            next_run_at=now + interval, last_run_at=now
        )
        == 1
    )


def run_due_periodic_jobs() -> int:
    ran = 0
    for name, (interval, job) in schedule().items():
        if not claim(name, interval):
            continue
        try:
            result = f"ok: {job()}"
        except Exception as exc:
            log.exception("periodic job %s failed", name)
            result = f"failed: {type(exc).__name__}: {exc}"
        PeriodicJob.objects.filter(name=name).update(last_result=result[:300])
        ran += 1
    return ran
