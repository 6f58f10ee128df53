"""The network reputation page for staff, and a CSV of each of its tables."""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable
from datetime import date

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from portal.accounts.access import staff_required
from portal.accounts.models import Allocation
from portal.enforcement.models import Exemption, ExemptionState
from portal.lib.charts import Cell, Reference, Series, heatmap, time_series
from portal.reputation import network as figures
from portal.reputation.health import source_health
from portal.reputation.models import ListingStatus
from portal.reputation.rollups import ABUSE, Scope
from portal.vetting.dnsbl import ZEN_CODES

LIST_CSS = {"SBL": "series-1", "CSS": "series-2", "XBL": "series-3", "PBL": "series-4", "DBL": "series-5"}
LIST_CHOICES = [(ABUSE, "Any abuse list"), *((n, n) for n in figures.LISTS)]


def list_names(status: ListingStatus) -> list[str]:
    return sorted({ZEN_CODES[c].name if c in ZEN_CODES else status.zone for c in status.codes})


def is_abuse(status: ListingStatus) -> bool:
    return any(ZEN_CODES[c].abuse if c in ZEN_CODES else True for c in status.codes)


def _chosen_range(request: HttpRequest, ranges: list[figures.RangeFigure]) -> ipaddress.IPv4Network | None:
    text = request.GET.get("range", "")
    try:
        network = ipaddress.ip_network(text, strict=False) if text else None
    except ValueError:
        network = None
    if network is None or network.version != 4:
        v4 = [r for r in ranges if ":" not in r.cidr]
        return ipaddress.IPv4Network(v4[0].cidr) if v4 else None
    return ipaddress.IPv4Network(f"{network.network_address}/24", strict=False)


def _heatmap(network: ipaddress.IPv4Network) -> dict[str, object]:
    """Which addresses of a /24 are allocated, exempted and listed where, cell by cell."""
    listed = figures.listed_in(network)
    allocated = {
        a for allocation in Allocation.objects.active().overlapping(network) for a in allocation.network
    }
    exempted = {
        a
        for exemption in Exemption.objects.filter(state=ExemptionState.ACTIVE).overlapping(network)
        for a in exemption.network
    }
    cells, rows = [], []
    for address in network:
        statuses = listed.get(str(address), [])
        names = sorted({n for s in statuses for n in list_names(s)})
        abuse = any(is_abuse(s) for s in statuses)
        state = (
            "abuse" if abuse else "policy" if names else "clean" if address in allocated else "unallocated"
        )
        open_25 = address in exempted
        words = [f"listed on {', '.join(names)}" if names else "not listed"]
        if open_25:
            words.append("exempted (port 25 open)")
        if state == "unallocated":
            words = ["not allocated"]
        cells.append(
            Cell(f"{address}: {'; '.join(words)}", f"heat-{state}", "!" if abuse else "P" if names else "")
        )
        if names:
            rows.append(
                {
                    "address": str(address),
                    "lists": names,
                    "since": min(s.since for s in statuses),
                    "exempted": open_25,
                }
            )
    return {
        "network": network,
        "svg": heatmap(title=f"Listed addresses in {network}", cells=cells),
        "rows": rows,
    }


def _charts(day: date, chosen_list: str) -> dict[str, object]:
    counts = figures.daily(day)
    labels = [d.strftime("%d %b") for d in counts.days]
    by_list = time_series(
        title="Listed addresses per day, by list, last 90 days",
        labels=labels,
        series=[Series(n, [v[0] for v in counts.lists[n]], LIST_CSS[n]) for n in figures.LISTS],
    )
    chosen = counts.lists[chosen_list]
    split = time_series(
        title=f"{dict(LIST_CHOICES)[chosen_list]}: exempted and blocked addresses per day",
        labels=labels,
        series=[
            Series("Exempted (port 25 open)", [v[1] for v in chosen], "series-exempted"),
            Series("Blocked", [v[0] - v[1] for v in chosen], "series-blocked"),
        ],
        stacked=True,
    )
    rates = list(figures.complaint_rates(day))
    known = [r[3] for r in rates if r[3] is not None]
    average = sum(known) / len(known) if known else None
    complaints = time_series(
        title="Complaints per 1,000 exempted addresses per day, last 90 days",
        labels=labels,
        series=[Series("Complaints per 1,000", [r[3] or 0 for r in rates], "series-1")],
        reference=Reference(average, f"90-day average {average:.1f}") if average is not None else None,
    )
    table = [
        {"day": d, "lists": [counts.lists[n][i] for n in figures.LISTS], "chosen": _split(chosen[i])}
        for i, d in reversed(list(enumerate(counts.days)))
    ]
    return {
        "by_list_svg": by_list,
        "split_svg": split,
        "complaints_svg": complaints,
        "daily_rows": table,
        "rate_rows": list(reversed(rates)),
        "chosen_label": dict(LIST_CHOICES)[chosen_list],
    }


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _durations(outcomes: figures.Outcomes) -> dict[str, str]:
    share = outcomes.listed_share
    return {
        "share": "–" if share is None else f"{share:.1%}",
        "to_suspension": duration(outcomes.listing_to_suspension),
        "to_delisting": duration(outcomes.suspension_to_delisting),
    }


@staff_required
def network(request: HttpRequest) -> HttpResponse:
    health = [h for h in source_health() if not h.ok]
    day = figures.latest_day()
    context: dict[str, object] = {"health": health, "day": day, "lists": figures.LISTS}
    if day is None:
        return render(request, "reputation/network.html", context)
    sort = request.GET.get("sort", "abuse")
    sort = sort if sort in figures.RANGE_SORTS else "abuse"
    chosen_list = request.GET.get("list", ABUSE)
    chosen_list = chosen_list if chosen_list in dict(LIST_CHOICES) else ABUSE
    ranges = figures.ranges(day, sort)
    outcomes = figures.outcomes(day)
    page = Paginator(ranges, figures.RANGE_PAGE).get_page(request.GET.get("page"))
    most_abused = ranges[: figures.TOP] if sort == "abuse" else figures.ranges(day, "abuse")[: figures.TOP]
    chosen_range = _chosen_range(request, most_abused)
    context.update(
        {
            "per_list": figures.per_list(day),
            "abuse_today": figures.daily(day, days=1).lists[ABUSE][0],
            "recent": [(s, list_names(s)) for s in figures.listings_by_age(newest=True, is_abuse=is_abuse)],
            "oldest": [(s, list_names(s)) for s in figures.listings_by_age(newest=False, is_abuse=is_abuse)],
            "most_abused": figures.ranges(day, "abuse")[: figures.TOP]
            if sort != "abuse"
            else ranges[: figures.TOP],
            "range_page": page,
            "range_count": len(ranges),
            "sort": sort,
            "sorts": [(key, label) for key, (label, _) in figures.RANGE_SORTS.items()],
            "tenants": figures.top_holders(Scope.TENANT, day),
            "prefixes": figures.top_holders(Scope.PREFIX, day),
            "outcomes": outcomes,
            "durations": _durations(outcomes),
            "chosen_list": chosen_list,
            "list_choices": LIST_CHOICES,
            "heat": _heatmap(chosen_range) if chosen_range else None,
            **_charts(day, chosen_list),
        }
    )
    return render(request, "reputation/network.html", context)


CSV_TABLES = ("lists", "daily", "tenants", "prefixes", "ranges", "complaints")


def _csv_rows(table: str, day: date) -> Iterable[list[object]]:
    if table == "lists":
        yield ["list", "listed", "exempted", "blocked", "listed_30_days_before", "change"]
        for f in figures.per_list(day):
            yield [f.name, f.listed, f.exempted, f.blocked, f.before, f.change]
    elif table == "daily":
        counts = figures.daily(day)
        names = [*figures.LISTS, ABUSE]
        yield ["day", *(f"{n}_{part}" for n in names for part in ("listed", "exempted", "blocked"))]
        for i, d in enumerate(counts.days):
            yield [d.isoformat(), *(v for n in names for v in _split(counts.lists[n][i]))]
    elif table in ("tenants", "prefixes"):
        scope = Scope.TENANT if table == "tenants" else Scope.PREFIX
        yield [scope, "listed", "exempted", "blocked", "complaints"]
        for holder in figures.top_holders(scope, day):
            yield [
                holder.label or holder.key,
                holder.listed,
                holder.exempted,
                holder.blocked,
                holder.complaints,
            ]
    elif table == "ranges":
        yield ["range", "listed_now", "peak_listed_30_days", "complaints_30_days"]
        for r in figures.ranges(day, "range"):
            yield [r.cidr, r.listed_now, r.peak, r.complaints]
    else:
        yield ["day", "complaints_on_exempted", "exempted_addresses", "per_1000"]
        for d, complaints, exempted, rate in figures.complaint_rates(day):
            yield [d.isoformat(), complaints, exempted, "" if rate is None else f"{rate:.2f}"]


def _split(counts: tuple[int, int]) -> tuple[int, int, int]:
    return counts[0], counts[1], counts[0] - counts[1]


@staff_required
def network_csv(request: HttpRequest, table: str) -> HttpResponse:
    day = figures.latest_day()
    if table not in CSV_TABLES or day is None:
        raise Http404("No such table")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="network-{table}-{day.isoformat()}.csv"'
    writer = csv.writer(response)
    for row in _csv_rows(table, day):
        writer.writerow(row)
    return response
