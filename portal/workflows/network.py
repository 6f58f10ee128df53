"""The daily rollups behind the network reputation page.

Listing periods come from the DNSBL events (transitions, not polls), who held an address from
the allocations' assigned/released times, and whether port 25 was open from the change feed's
add/remove rows. Each is a set of time intervals; a day's figures intersect them, so an address
that moves between tenants at noon counts for each tenant only for the hours it held the
address while listed. Recomputing a day replaces its rows: the job is safe to repeat.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import Allocation
from portal.enforcement.models import ChangeOp, Exemption, ExemptionState, FeedChange
from portal.lib.ipblocks import bounds
from portal.reputation.models import Kind, ListingStatus, ReputationEvent, Source
from portal.reputation.rollups import ABUSE, NetworkDay, NetworkRollup, Scope
from portal.unblock.models import RequestedBlock
from portal.vetting.dnsbl import ZEN_CODES, display_zone
from portal.vetting.models import CheckResult

BACKFILL_DAYS = 90
COHORT_DAYS = 30
POLICY_LISTS = frozenset({"PBL"})
DBL = "DBL"
type Span = tuple[datetime, datetime]
type Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def day_span(day: date) -> Span:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def overlap(a: Span, b: Span) -> Span | None:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    # Closed at both ends: a suspension stamped the instant the listing was recorded still
    # means the address was exempted while listed.
    return (start, end) if start <= end else None


def lists_of(zone: str, codes: Iterable[str]) -> frozenset[str]:
    names = {ZEN_CODES[c].name if c in ZEN_CODES else display_zone(zone) for c in codes if c}
    return frozenset(names or {display_zone(zone)})


def units(cidr: str) -> list[Address]:
    """The addresses a listed block counts as: each IPv4 address, an IPv6 block as one."""
    network = ipaddress.ip_network(cidr)
    if network.version == 6:
        return [network.network_address]
    return list(network)


def size(cidr: str) -> int:
    network = ipaddress.ip_network(cidr)
    return network.num_addresses if network.version == 4 else 1


def range_of(address: Address) -> str:
    return str(ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 64}", strict=False))


class BlockTimeline[V]:
    """Blocks with the time intervals they hold a value; look-up by address, any prefix length."""

    def __init__(self) -> None:
        self._blocks: dict[tuple[int, int, int], list[tuple[Span, V]]] = defaultdict(list)
        self._lengths: dict[int, set[int]] = {4: set(), 6: set()}
        self.entries: list[tuple[str, Span, V]] = []

    def add(self, cidr: str, span: Span, value: V) -> None:
        network = ipaddress.ip_network(cidr)
        self.entries.append((cidr, span, value))
        self._lengths[network.version].add(network.prefixlen)
        self._blocks[(network.version, network.prefixlen, int(network.network_address))].append((span, value))

    def covering(self, address: Address) -> Iterator[tuple[Span, V]]:
        width = address.max_prefixlen
        number = int(address)
        for length in self._lengths[address.version]:
            yield from self._blocks.get(
                (address.version, length, number >> (width - length) << (width - length)), []
            )

    def during(self, address: Address, span: Span) -> Iterator[tuple[Span, V]]:
        """The (clipped interval, value) pairs that cover `address` during `span`."""
        for held, value in self.covering(address):
            if (common := overlap(held, span)) is not None:
                yield common, value


@dataclass(frozen=True)
class Holding:
    tenant_id: str
    tenant_name: str
    prefix: str


def holdings(start: datetime, end: datetime, now: datetime) -> BlockTimeline[Holding]:
    timeline: BlockTimeline[Holding] = BlockTimeline()
    rows = (
        Allocation.objects.filter(assigned_at__lt=end)
        .filter(Q(released_at__isnull=True) | Q(released_at__gt=start))
        .values_list("cidr", "assigned_at", "released_at", "tenant_id", "tenant__name")
    )
    for cidr, assigned, released, tenant_id, name in rows.iterator(chunk_size=5000):
        timeline.add(cidr, (assigned, released or now), Holding(str(tenant_id), name, cidr))
    return timeline


def exemption_periods(start: datetime, end: datetime, now: datetime) -> BlockTimeline[str]:
    """When each exemption was active (port 25 open), from its change-feed rows."""
    relevant = Exemption.objects.filter(created_at__lt=end).filter(
        Q(state=ExemptionState.ACTIVE) | Q(state_changed_at__gte=start)
    )
    opened: dict[str, datetime] = {}
    timeline: BlockTimeline[str] = BlockTimeline()
    changes = (
        FeedChange.objects.filter(exemption__in=relevant.values("pk"))
        .order_by("seq")
        .values_list("exemption_id", "cidr", "op", "at")
    )
    cidrs: dict[str, str] = {}
    for exemption_id, cidr, op, at in changes.iterator(chunk_size=5000):
        key = str(exemption_id)
        cidrs[key] = cidr
        if op == ChangeOp.ADD:
            opened.setdefault(key, at)
        elif key in opened:
            timeline.add(cidr, (opened.pop(key), at), key)
    for key, since in opened.items():
        timeline.add(cidrs[key], (since, now), key)
    return timeline


@dataclass
class ListingHistory:
    """(block, zone) -> the intervals it was listed, each with the lists it was on."""

    periods: dict[tuple[str, str], list[tuple[Span, frozenset[str]]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def listing_history(start: datetime, now: datetime) -> ListingHistory:
    """Every listing that was in force at some moment since `start`.

    The state at `start` of a pair with later events is its last event before `start`; a pair
    without later events kept its current ListingStatus throughout, so no query reads the whole
    event history.
    """
    dnsbl = ReputationEvent.objects.filter(source=Source.DNSBL, kind__in=(Kind.LISTED, Kind.DELISTED))
    later: dict[tuple[str, str], list[tuple[datetime, str, str]]] = defaultdict(list)
    for cidr, zone, kind, code, at in (
        dnsbl.filter(observed_at__gte=start)
        .order_by("observed_at", "id")
        .values_list("cidr", "zone", "kind", "code", "observed_at")
        .iterator(chunk_size=5000)
    ):
        later[(cidr, zone)].append((at, kind, code))
    history = ListingHistory()
    for cidr, zone, codes, since in (
        ListingStatus.objects.filter(listed=True, since__lt=start)
        .values_list("address", "zone", "codes", "since")
        .iterator(chunk_size=5000)
    ):
        if (cidr, zone) not in later:
            history.periods[(cidr, zone)].append(((since, now), lists_of(zone, codes)))
    before = _state_before(start, list(later))
    for pair, events in later.items():
        state = before.get(pair)
        for at, kind, code in events:
            if state is not None:
                history.periods[pair].append(((state[0], at), state[1]))
            state = (at, lists_of(pair[1], code.split(","))) if kind == Kind.LISTED else None
        if state is not None:
            history.periods[pair].append(((state[0], now), state[1]))
    return history


def _state_before(
    start: datetime, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[datetime, frozenset[str]]]:
    """For each pair, the listing in force at `start` (its last event before it was a listing)."""
    found: dict[tuple[str, str], tuple[datetime, frozenset[str]]] = {}
    wanted = set(pairs)
    cidrs = sorted({cidr for cidr, _ in pairs})
    for n in range(0, len(cidrs), 500):
        chunk = [bounds(ipaddress.ip_network(c)) for c in cidrs[n : n + 500]]
        firsts = Q()
        for b in chunk:
            firsts |= Q(family=b.family, first=b.first, last=b.last)
        last_seen: dict[tuple[str, str], tuple[datetime, str, str]] = {}
        for cidr, zone, kind, code, at in (
            ReputationEvent.objects.filter(firsts, source=Source.DNSBL, observed_at__lt=start)
            .filter(kind__in=(Kind.LISTED, Kind.DELISTED))
            .order_by("observed_at", "id")
            .values_list("cidr", "zone", "kind", "code", "observed_at")
        ):
            if (cidr, zone) in wanted:
                last_seen[(cidr, zone)] = (at, kind, code)
        for pair, (at, kind, code) in last_seen.items():
            if kind == Kind.LISTED:
                found[pair] = (at, lists_of(pair[1], code.split(",")))
    return found


class Tally:
    """Counts for one day: (scope, key, list) -> listed, exempted, complaints."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.labels: dict[tuple[str, str], str] = {}

    def count(self, scope: str, key: str, listname: str, *, exempted: bool, label: str = "") -> None:
        row = self.rows[(scope, key, listname)]
        row[0] += 1
        row[1] += int(exempted)
        if label:
            self.labels[(scope, key)] = label

    def complaint(self, scope: str, key: str, label: str = "") -> None:
        self.rows[(scope, key, ABUSE)][2] += 1
        if label:
            self.labels[(scope, key)] = label

    def models(self, day: date) -> list[NetworkRollup]:
        return [
            NetworkRollup(
                day=day,
                scope=scope,
                key=key,
                label=self.labels.get((scope, key), ""),
                listname=listname,
                listed=listed,
                exempted=exempted,
                complaints=complaints,
            )
            for (scope, key, listname), (listed, exempted, complaints) in self.rows.items()
        ]


def _exempted(exemptions: BlockTimeline[str], address: Address, spans: Iterable[Span]) -> bool:
    return any(next(exemptions.during(address, span), None) is not None for span in spans)


def _tally_listings(
    tally: Tally,
    day: Span,
    by_address: dict[Address, list[tuple[Span, frozenset[str]]]],
    holders: BlockTimeline[Holding],
    exemptions: BlockTimeline[str],
) -> None:
    for address, periods in by_address.items():
        spans_by_list: dict[str, list[Span]] = defaultdict(list)
        for span, names in periods:
            if (clipped := overlap(span, day)) is not None:
                for name in names:
                    spans_by_list[name].append(clipped)
                if names - POLICY_LISTS:
                    spans_by_list[ABUSE].append(clipped)
        for name, spans in spans_by_list.items():
            tally.count(Scope.NETWORK, "", name, exempted=_exempted(exemptions, address, spans))
        abuse = spans_by_list.get(ABUSE)
        if not abuse:
            continue
        tally.count(Scope.RANGE, range_of(address), ABUSE, exempted=_exempted(exemptions, address, abuse))
        held: dict[Holding, list[Span]] = defaultdict(list)
        for span in abuse:
            for common, holding in holders.during(address, span):
                held[holding].append(common)
        for holding, spans in held.items():
            exempted = _exempted(exemptions, address, spans)
            tally.count(Scope.TENANT, holding.tenant_id, ABUSE, exempted=exempted, label=holding.tenant_name)
        for prefix in {h.prefix for h in held}:
            spans = [s for h, ss in held.items() if h.prefix == prefix for s in ss]
            tally.count(Scope.PREFIX, prefix, ABUSE, exempted=_exempted(exemptions, address, spans))


def _dbl_hits(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """(when, requested block) for each request whose vetting found a sending domain on the DBL."""
    runs = CheckResult.objects.filter(
        check_name="dbl", outcome="fail", run__finished_at__gte=start, run__finished_at__lt=end
    ).values_list("run__request_id", "run__finished_at")
    finished = {request_id: at for request_id, at in runs if at is not None}
    blocks = RequestedBlock.objects.filter(request_id__in=list(finished)).values_list("request_id", "cidr")
    return [(finished[request_id], cidr) for request_id, cidr in blocks]


def roll_up_listings(first: date, last: date) -> int:
    """Recompute the listing, complaint and exemption counts of the days `first`..`last`."""
    now = timezone.now()
    start, end = day_span(first)[0], day_span(last)[1]
    history = listing_history(start, now)
    holders = holdings(start, end, now)
    exemptions = exemption_periods(start, end, now)
    by_address: dict[Address, list[tuple[Span, frozenset[str]]]] = defaultdict(list)
    for (cidr, _zone), periods in history.periods.items():
        for address in units(cidr):
            by_address[address].extend(periods)
    complaints = list(
        ReputationEvent.objects.filter(kind=Kind.COMPLAINT, observed_at__gte=start, observed_at__lt=end)
        .exclude(cidr="")
        .values_list("cidr", "observed_at", "tenant_id", "tenant__name")
    )
    dbl = _dbl_hits(start, end)
    rollups: list[NetworkRollup] = []
    totals: list[NetworkDay] = []
    for day in days_between(first, last):
        span = day_span(day)
        tally = Tally()
        _tally_listings(tally, span, by_address, holders, exemptions)
        on_exempted = 0
        for cidr, at, tenant_id, tenant_name in complaints:
            if not span[0] <= at < span[1]:
                continue
            address = ipaddress.ip_network(cidr).network_address
            tally.complaint(Scope.NETWORK, "")
            tally.complaint(Scope.RANGE, range_of(address))
            if tenant_id is not None:
                tally.complaint(Scope.TENANT, str(tenant_id), tenant_name)
            for _, holding in holders.during(address, (at, at)):
                tally.complaint(Scope.PREFIX, holding.prefix)
            on_exempted += _exempted(exemptions, address, [(at, at)])
        seen: set[Address] = set()
        for at, cidr in dbl:
            if span[0] <= at < span[1]:
                for address in set(units(cidr)) - seen:
                    seen.add(address)
                    tally.count(Scope.NETWORK, "", DBL, exempted=_exempted(exemptions, address, [span]))
        rollups.extend(tally.models(day))
        exempted_today = {key: cidr for cidr, held, key in exemptions.entries if overlap(held, span)}
        allocated_today = {
            cidr for cidr, held, _ in holders.entries if ":" not in cidr and overlap(held, span)
        }
        totals.append(
            NetworkDay(
                day=day,
                # A block that changed hands during the day is still one block of addresses.
                allocated_addresses=sum(size(cidr) for cidr in allocated_today),
                exempted_addresses=sum(size(cidr) for cidr in exempted_today.values()),
                complaints=sum(1 for _, at, _, _ in complaints if span[0] <= at < span[1]),
                complaints_on_exempted=on_exempted,
                computed_at=now,
            )
        )
    with transaction.atomic():
        NetworkRollup.objects.filter(day__gte=first, day__lte=last).delete()
        NetworkRollup.objects.bulk_create(rollups, batch_size=2000)
        for total in totals:
            NetworkDay.objects.update_or_create(
                day=total.day,
                defaults={
                    "allocated_addresses": total.allocated_addresses,
                    "exempted_addresses": total.exempted_addresses,
                    "complaints": total.complaints,
                    "complaints_on_exempted": total.complaints_on_exempted,
                    "computed_at": now,
                },
            )
    return len(rollups)


def roll_up_outcomes(first: date, last: date) -> int:
    """Recompute, for the days `first`..`last`, the cohort of exemptions approved that day (listed
    within 30 days?) and the listing → suspension → delisting times of that day's suspensions."""
    now = timezone.now()
    count = 0
    for day in days_between(first, last):
        start, end = day_span(day)
        approved = listed = 0
        for exemption in Exemption.objects.filter(created_at__gte=start, created_at__lt=end).only(
            "cidr", "created_at"
        ):
            approved += size(exemption.cidr)
            listed += len(
                set(
                    ReputationEvent.objects.overlapping(exemption.network)
                    .filter(kind=Kind.LISTED, abuse=True, source=Source.DNSBL)
                    .filter(
                        observed_at__gte=exemption.created_at,
                        observed_at__lte=exemption.created_at + timedelta(days=COHORT_DAYS),
                    )
                    .values_list("cidr", flat=True)
                )
            )
        to_suspension: list[float] = []
        to_delisting: list[float] = []
        for change in FeedChange.objects.filter(event="exemption.suspended", at__gte=start, at__lt=end):
            cause = (
                ReputationEvent.objects.overlapping(ipaddress.ip_network(change.cidr))
                .filter(kind=Kind.LISTED, abuse=True, source=Source.DNSBL)
                .filter(observed_at__lte=change.at, observed_at__gte=change.at - timedelta(days=1))
                .order_by("-observed_at")
                .first()
            )
            if cause is None:
                continue  # suspended for complaints, not a listing
            to_suspension.append((change.at - cause.observed_at).total_seconds())
            delisted = (
                ReputationEvent.objects.filter(
                    source=Source.DNSBL, kind=Kind.DELISTED, cidr=cause.cidr, zone=cause.zone
                )
                .filter(observed_at__gte=cause.observed_at)
                .order_by("observed_at")
                .values_list("observed_at", flat=True)
                .first()
            )
            if delisted is not None:
                to_delisting.append(max((delisted - change.at).total_seconds(), 0.0))
        NetworkDay.objects.update_or_create(
            day=day,
            defaults={
                "approved_addresses": approved,
                "listed_within_30_days": listed,
                "listing_to_suspension": to_suspension,
                "suspension_to_delisting": to_delisting,
            },
            create_defaults={
                "approved_addresses": approved,
                "listed_within_30_days": listed,
                "listing_to_suspension": to_suspension,
                "suspension_to_delisting": to_delisting,
                "computed_at": now,
            },
        )
        count += 1
    return count


def roll_up_network() -> int:
    """The periodic job: today and yesterday (the last 90 days on the first run); the outcome
    figures of the last 90 days, which keep changing as approvals age and listings clear."""
    today = timezone.now().date()
    oldest = today - timedelta(days=BACKFILL_DAYS - 1)
    latest = NetworkDay.objects.order_by("-day").values_list("day", flat=True).first()
    # From the last day computed (it was partial then), so days the worker missed are filled in.
    first = max(oldest, min(latest, today - timedelta(days=1))) if latest else oldest
    rows = roll_up_listings(first, today)
    roll_up_outcomes(oldest, today)
    return rows
