"""Whole-space DNSBL monitoring over DNS, for providers small enough to ask one query per address.

Every allocated IPv4 address (and every exempted IPv6 address: an IPv6 allocation is too large to
enumerate; zone files cover it) is checked against each zone that is not read from a zone file.
The periodic job runs a *slice* every DNSBL_MONITOR_SLICE_SECONDS: it takes the addresses checked
longest ago, an even share of the whole so that a pass is spread across DNSBL_MONITOR_MINUTES,
and asks at most DNSBL_QUERIES_PER_SECOND. An address is never asked again on a zone before that
zone's minimum recheck interval, counted from `ListingStatus.checked_at`, which vetting sets too.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from portal.accounts.models import Allocation
from portal.enforcement.models import Exemption
from portal.lib.dns import Resolver
from portal.reputation.models import ListingSource, ListingStatus, SourceKind
from portal.vetting import dnsbl
from portal.vetting.checks import addresses_of
from portal.vetting.findings import FAIL, INFO, PASS, Finding
from portal.workflows.reputation import Observation, record_listing_batch
from portal.workflows.zone_import import configured_zone_files

BATCH = 1000  # observations per transaction


class Pacer:
    """Hands out start times 1/qps apart to any number of threads."""

    def __init__(self, qps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0:
            raise ImproperlyConfigured("DNSBL_QUERIES_PER_SECOND must be above 0")
        self.gap = 1 / qps
        self.clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            start = max(self._next, self.clock())
            self._next = start + self.gap
        delay = start - self.clock()
        if delay > 0:
            time.sleep(delay)


@dataclass
class SliceResult:
    zone: str
    asked: int
    errors: int
    due: int
    monitored: int


def recheck_interval(zone: str) -> timedelta:
    """The zone's minimum time between two look-ups of one address (DNSBL_MIN_RECHECK_MINUTES)."""
    minutes: float = settings.DNSBL_MONITOR_MINUTES
    for entry in settings.DNSBL_MIN_RECHECK_MINUTES:
        name, equals, value = entry.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"DNSBL_MIN_RECHECK_MINUTES: {entry!r} is not `minutes` or `zone=minutes`"
            ) from None
        if not equals:
            minutes = number
        elif name == zone:
            return timedelta(minutes=number)
    return timedelta(minutes=minutes)


def monitored_addresses() -> tuple[list[str], set[str]]:
    """Every allocated IPv4 address and every exempted address, each once; and the exempted ones."""
    addresses: set[str] = set()
    for cidr in Allocation.objects.active().filter(family=4).values_list("cidr", flat=True):
        addresses.update(str(a) for a in ipaddress.ip_network(cidr))
    exempted: set[str] = set()
    for exemption in Exemption.objects.in_force().only("cidr"):
        exempted.update(addresses_of(exemption.network))
    return sorted(addresses | exempted, key=_address_order), exempted


def _address_order(address: str) -> tuple[int, int]:
    # IPv4 and IPv6 addresses don't compare with each other: IPv4 first, then numeric order.
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def dns_zones() -> list[str]:
    """The zones to query: the configured IP zones less those read from zone files."""
    from_files = {source.zone for source in configured_zone_files()}
    return [zone for zone in dnsbl.ip_zones() if dnsbl.display_zone(zone) not in from_files]


def monitor_by_dns(*, now: datetime | None = None) -> list[SliceResult]:
    """One slice of the DNS monitor over every zone; returns what each zone's slice did."""
    zones = dns_zones()
    if not zones:
        return []
    now = now or timezone.now()
    targets, exempted = monitored_addresses()
    budget = max(1, int(settings.DNSBL_QUERIES_PER_SECOND * settings.DNSBL_MONITOR_SLICE_SECONDS))
    resolver = Resolver.from_settings()
    pacer = Pacer(settings.DNSBL_QUERIES_PER_SECOND)
    share = budget // len(zones) or 1
    return [_monitor_zone(zone, targets, exempted, resolver, pacer, now, share) for zone in zones]


def _monitor_zone(
    zone: str,
    targets: list[str],
    exempted: set[str],
    resolver: Resolver,
    pacer: Pacer,
    now: datetime,
    budget: int,
) -> SliceResult:
    shown = dnsbl.display_zone(zone)
    interval = timedelta(minutes=settings.DNSBL_MONITOR_MINUTES)
    source = _source(shown, interval)
    checked = dict(ListingStatus.objects.filter(zone=shown).values_list("address", "checked_at"))
    not_before = now - recheck_interval(shown)
    due = [a for a in targets if checked.get(a) is None or checked[a] <= not_before]
    never = datetime.min.replace(tzinfo=now.tzinfo)
    # Exempted addresses first (they can send mail, and a listing suspends them), then those
    # never checked, then the oldest.
    due.sort(key=lambda a: (a not in exempted, checked.get(a) or never))
    share = math.ceil(len(targets) * settings.DNSBL_MONITOR_SLICE_SECONDS / interval.total_seconds())
    chosen = due[: min(share, budget)]

    def look_up(address: str) -> Finding:
        pacer.wait()
        return dnsbl.check_address(resolver, address, zone)

    with ThreadPoolExecutor(max_workers=settings.VETTING_CONCURRENCY) as pool:
        findings = list(pool.map(look_up, chosen))
    answered = [f for f in findings if f.outcome in (PASS, INFO, FAIL)]
    observed_at = timezone.now()
    for start in range(0, len(answered), BATCH):
        record_listing_batch(
            zone=shown,
            observations=[
                Observation(f.subject, list(f.evidence.get("codes", [])))
                for f in answered[start : start + BATCH]
            ],
            observed_at=observed_at,
        )
    errors = len(findings) - len(answered)
    for finding in answered:
        checked[finding.subject] = observed_at
    _account(source, targets, checked, errors, observed_at, interval)
    return SliceResult(shown, len(findings), errors, len(due), len(targets))


def _source(zone: str, interval: timedelta) -> ListingSource:
    source, _ = ListingSource.objects.get_or_create(
        name=f"dns:{zone}",
        defaults={"kind": SourceKind.DNS, "zone": zone, "interval_seconds": interval.total_seconds()},
    )
    return source


def _account(
    source: ListingSource,
    targets: list[str],
    checked: dict[str, datetime],
    errors: int,
    now: datetime,
    interval: timedelta,
) -> None:
    """Coverage, errors and passes: a pass is complete when every address was checked since it began."""
    started = source.pass_started_at or now
    if source.pass_started_at is None:
        source.pass_started_at = started
    source.pass_errors += errors
    window = now - interval - timedelta(seconds=settings.DNSBL_MONITOR_SLICE_SECONDS)
    source.addresses_checked = sum(1 for a in targets if (checked.get(a) or window) > window)
    source.addresses_allocated = len(targets)
    source.interval_seconds = int(interval.total_seconds())
    if all(a in checked and checked[a] >= started for a in targets):
        source.last_pass_started_at, source.last_pass_finished_at = started, now
        source.errors_last_pass, source.pass_errors = source.pass_errors, 0
        source.pass_started_at = now
    source.last_error = ""
    source.save()
