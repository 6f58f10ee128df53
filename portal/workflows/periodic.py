"""Jobs that run on a schedule. Each due time is claimed by one worker with a conditional
UPDATE, so a job runs once per due time however many workers there are."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor
from portal.core import metrics
from portal.core.models import Tally
from portal.enforcement.models import Exemption, PeriodicJob
from portal.enforcement.webhooks import disable_failing_endpoints
from portal.telemetry import retention
from portal.workflows import monitoring
from portal.workflows.exemptions import move
from portal.workflows.network import roll_up_network
from portal.workflows.retention import prune as prune_history
from portal.workflows.zone_import import watch_zone_files

log = logging.getLogger(__name__)
EXPIRY = Actor.of_system("expiry")


def expire_exemptions() -> int:
    count = 0
    for exemption in Exemption.objects.due_to_expire().select_related("tenant")[:1000]:
        with transaction.atomic():
            if move(exemption, "exemption.expired", actor=EXPIRY, reason="Reached its expiry time."):
                count += 1
    return count


@dataclass(frozen=True)
class MonitorPass:
    checked: int
    # Look-ups with no usable answer (resolver down, REFUSED, a Spamhaus error code): those
    # addresses were not checked at all, which a plain count of look-ups would hide.
    errors: int
    at: datetime | None = None

    def __str__(self) -> str:
        return f"{self.checked} look-ups, {self.errors} without a usable answer"


def monitor_dnsbl() -> MonitorPass:
    """One slice of the whole-space DNS monitor (portal/workflows/monitoring.py): record
    transitions, which apply the suspension policy."""
    slices = monitoring.monitor_by_dns()
    result = MonitorPass(checked=sum(s.asked for s in slices), errors=sum(s.errors for s in slices))
    metrics.set_gauge("dnsbl_monitor", label="checked", value=result.checked)
    metrics.set_gauge("dnsbl_monitor", label="errors", value=result.errors)
    if result.errors:
        log.warning(
            "DNSBL monitor: %d of %d look-ups got no usable answer; those addresses were not checked "
            "(see DNS_NAMESERVERS and SPAMHAUS_DQS_KEY)",
            result.errors,
            result.checked,
        )
    return result


def last_dnsbl_pass() -> MonitorPass | None:
    """What the last monitor pass found, from any process; None before the first pass."""
    tallies = {
        t.name: t for t in Tally.objects.filter(name__in=["dnsbl_monitor:checked", "dnsbl_monitor:errors"])
    }
    if "dnsbl_monitor:checked" not in tallies:
        return None
    errors = tallies.get("dnsbl_monitor:errors")
    return MonitorPass(
        checked=tallies["dnsbl_monitor:checked"].value,
        errors=errors.value if errors else 0,
        at=tallies["dnsbl_monitor:checked"].updated_at,
    )


def schedule() -> dict[str, tuple[timedelta, Callable[[], object]]]:
    return {
        "expire_exemptions": (timedelta(seconds=settings.EXPIRY_CHECK_SECONDS), expire_exemptions),
        # A slice each time; a whole pass takes DNSBL_MONITOR_MINUTES (see monitoring.py).
        "monitor_dnsbl": (timedelta(seconds=settings.DNSBL_MONITOR_SLICE_SECONDS), monitor_dnsbl),
        "import_dnsbl_zones": (timedelta(minutes=settings.DNSBL_ZONE_CHECK_MINUTES), watch_zone_files),
        "disable_failing_endpoints": (timedelta(minutes=10), disable_failing_endpoints),
        # Hourly, so that today's row on the network page is never more than an hour old.
        "roll_up_network": (timedelta(hours=1), roll_up_network),
        # Hourly rows expire by the hour; once an hour keeps the table at its retention.
        "purge_telemetry": (timedelta(hours=1), retention.purge),
        # Batched deletes of delivered webhooks, sent emails, old feed changes and vetting runs.
        "prune_history": (timedelta(hours=1), prune_history),
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
