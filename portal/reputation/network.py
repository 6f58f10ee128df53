"""What the network reputation page shows, read from the daily rollups and a few bounded
queries, so that its cost doesn't grow with the number of addresses or events."""

from __future__ import annotations

import ipaddress
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Max, Sum

from portal.reputation.models import ListingStatus
from portal.reputation.rollups import ABUSE, NetworkDay, NetworkRollup, Scope

LISTS = ("SBL", "CSS", "XBL", "PBL", "DBL")
HISTORY_DAYS = 90
CHANGE_DAYS = 30
COHORT_DAYS = 30
TOP = 10
TOP_HOLDERS = 20
RANGE_PAGE = 50
SCAN_LIMIT = 2000  # rows of ListingStatus a top ten may read past policy-only listings


def latest_day() -> date | None:
    return NetworkDay.objects.order_by("-day").values_list("day", flat=True).first()


@dataclass(frozen=True)
class ListFigure:
    name: str
    listed: int
    exempted: int
    before: int

    @property
    def blocked(self) -> int:
        return self.listed - self.exempted

    @property
    def change(self) -> int:
        return self.listed - self.before


def per_list(day: date) -> list[ListFigure]:
    """Listed addresses per list on `day`, and 30 days before."""
    earlier = day - timedelta(days=CHANGE_DAYS)
    rows = NetworkRollup.objects.filter(scope=Scope.NETWORK, day__in=(day, earlier)).exclude(listname=ABUSE)
    now: dict[str, tuple[int, int]] = {}
    then: dict[str, int] = {}
    for row in rows:
        if row.day == day:
            now[row.listname] = (row.listed, row.exempted)
        else:
            then[row.listname] = row.listed
    names = [*LISTS, *sorted((set(now) | set(then)) - set(LISTS))]
    return [ListFigure(n, *now.get(n, (0, 0)), then.get(n, 0)) for n in names]


@dataclass(frozen=True)
class DailyCounts:
    days: list[date]
    # list name -> per day (listed, exempted)
    lists: dict[str, list[tuple[int, int]]]


def daily(day: date, days: int = HISTORY_DAYS) -> DailyCounts:
    first = day - timedelta(days=days - 1)
    span = [first + timedelta(days=n) for n in range(days)]
    index = {d: n for n, d in enumerate(span)}
    lists: dict[str, list[tuple[int, int]]] = defaultdict(lambda: [(0, 0)] * days)
    for name in (*LISTS, ABUSE):
        lists[name] = [(0, 0)] * days
    rows = NetworkRollup.objects.filter(scope=Scope.NETWORK).between(first, day)
    for d, name, listed, exempted in rows.values_list("day", "listname", "listed", "exempted"):
        lists[name][index[d]] = (listed, exempted)
    return DailyCounts(span, dict(lists))


def top_holders(scope: str, day: date, limit: int = TOP_HOLDERS) -> list[NetworkRollup]:
    """The tenants or prefixes with the most addresses on an abuse list on `day`."""
    return list(
        NetworkRollup.objects.of(scope).filter(day=day, listed__gt=0).order_by("-listed", "key")[:limit]
    )


@dataclass(frozen=True)
class RangeFigure:
    cidr: str
    listed_now: int
    peak: int
    complaints: int

    @property
    def sort_address(self) -> tuple[int, int]:
        network = ipaddress.ip_network(self.cidr)
        return network.version, int(network.network_address)


RANGE_SORTS: dict[str, tuple[str, Callable[[RangeFigure], tuple[object, ...]]]] = {
    "abuse": ("Most abused", lambda r: (-r.peak - r.complaints, -r.complaints, r.sort_address)),
    "listed": ("Listed now", lambda r: (-r.listed_now, -r.peak, r.sort_address)),
    "complaints": ("Complaints", lambda r: (-r.complaints, -r.peak, r.sort_address)),
    "range": ("Range", lambda r: (r.sort_address,)),
}


def ranges(day: date, sort: str = "abuse") -> list[RangeFigure]:
    """Every range with an abuse listing or a complaint in the 30 days up to `day`."""
    first = day - timedelta(days=CHANGE_DAYS - 1)
    rows = (
        NetworkRollup.objects.of(Scope.RANGE)
        .between(first, day)
        .values("key")
        .annotate(peak=Max("listed"), complaints=Sum("complaints"))
    )
    today = dict(NetworkRollup.objects.of(Scope.RANGE).filter(day=day).values_list("key", "listed"))
    figures = [RangeFigure(r["key"], today.get(r["key"], 0), r["peak"], r["complaints"]) for r in rows]
    return sorted(figures, key=RANGE_SORTS.get(sort, RANGE_SORTS["abuse"])[1])


def listed_in(network: ipaddress.IPv4Network) -> dict[str, list[ListingStatus]]:
    """The addresses of a /24 that are listed now, with their listings."""
    statuses = ListingStatus.objects.filter(listed=True, address__in=[str(a) for a in network])
    found: dict[str, list[ListingStatus]] = defaultdict(list)
    for status in statuses.order_by("address", "zone"):
        found[status.address].append(status)
    return found


def listings_by_age(*, newest: bool, is_abuse: Callable[[ListingStatus], bool]) -> list[ListingStatus]:
    """The ten most recent (or oldest) listings in force that are evidence of abuse."""
    rows = ListingStatus.objects.filter(listed=True).order_by("-since" if newest else "since")
    found: list[ListingStatus] = []
    for status in rows[:SCAN_LIMIT].iterator(chunk_size=200):
        if is_abuse(status):
            found.append(status)
            if len(found) == TOP:
                break
    return found


@dataclass(frozen=True)
class Outcomes:
    approved: int
    listed_within_30_days: int
    cohort_first: date
    cohort_last: date
    listing_to_suspension: float | None
    suspension_to_delisting: float | None
    suspensions: int
    complaints_on_exempted: int
    exempted_addresses: float

    @property
    def listed_share(self) -> float | None:
        return self.listed_within_30_days / self.approved if self.approved else None

    @property
    def complaints_per_1000(self) -> float | None:
        if not self.exempted_addresses:
            return None
        return self.complaints_on_exempted / self.exempted_addresses * 1000


def outcomes(day: date) -> Outcomes:
    """Does vetting work: of the addresses approved 30 to 120 days ago (their 30 days are over),
    how many were listed within 30 days; how fast listings are acted on; complaints per 1,000
    exempted addresses over the last 30 days."""
    rows = list(
        NetworkDay.objects.filter(day__gt=day - timedelta(days=HISTORY_DAYS + COHORT_DAYS), day__lte=day)
    )
    cohort_last = day - timedelta(days=COHORT_DAYS)
    cohort_first = cohort_last - timedelta(days=HISTORY_DAYS - 1)
    cohort = [r for r in rows if cohort_first <= r.day <= cohort_last]
    recent = [r for r in rows if r.day > day - timedelta(days=HISTORY_DAYS)]
    month = [r for r in rows if r.day > day - timedelta(days=CHANGE_DAYS)]
    to_suspension = [s for r in recent for s in r.listing_to_suspension]
    to_delisting = [s for r in recent for s in r.suspension_to_delisting]
    return Outcomes(
        approved=sum(r.approved_addresses for r in cohort),
        listed_within_30_days=sum(r.listed_within_30_days for r in cohort),
        cohort_first=cohort_first,
        cohort_last=cohort_last,
        listing_to_suspension=statistics.median(to_suspension) if to_suspension else None,
        suspension_to_delisting=statistics.median(to_delisting) if to_delisting else None,
        suspensions=len(to_suspension),
        complaints_on_exempted=sum(r.complaints_on_exempted for r in month),
        exempted_addresses=statistics.mean(r.exempted_addresses for r in month) if month else 0,
    )


def complaint_rates(day: date, days: int = HISTORY_DAYS) -> Iterator[tuple[date, int, int, float | None]]:
    """Per day: complaints on exempted addresses, exempted addresses, complaints per 1,000."""
    rows = {r.day: r for r in NetworkDay.objects.filter(day__gt=day - timedelta(days=days), day__lte=day)}
    for n in range(days - 1, -1, -1):
        d = day - timedelta(days=n)
        row = rows.get(d)
        if row is None:
            yield d, 0, 0, None
        else:
            rate = (
                row.complaints_on_exempted / row.exempted_addresses * 1000 if row.exempted_addresses else None
            )
            yield d, row.complaints_on_exempted, row.exempted_addresses, rate
