"""Storing a report's counts: who held each address, and the hourly upsert.

The upsert is one statement per batch, `INSERT … ON CONFLICT (family, first, hour) DO UPDATE SET
blocked = blocked + excluded.blocked …`, so that two agents (or two reports) counting the same
address in the same hour add up instead of overwriting each other, without reading first.
`bulk_create(update_conflicts=True)` can only overwrite. PostgreSQL gets the whole report as
one text per column, split into arrays for `unnest` (one round trip for 100,000 rows); SQLite,
which has the same ON CONFLICT clause but no arrays, gets multi-row VALUES in batches under its
limit of bound variables. Both return the totals after the update, from which the caller sees
which rows just crossed a threshold: that is what makes a signal fire once, however the counts arrive.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Q

from portal.accounts.models import Allocation
from portal.lib.prefixmap import PrefixMap
from portal.telemetry.models import SmtpHour

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SQLITE_BATCH = 3000  # rows per statement: 9 bound variables each, under SQLite's 32,766


@dataclass(frozen=True)
class ReportCounts:
    """A report's counts as columns, one position per distinct address: a report of 100,000
    addresses is six lists here, not 100,000 objects."""

    cidrs: list[str]  # each address as `cidr` stores it
    families: list[int]
    numbers: list[int]  # the address as an integer, for prefix look-ups
    blocked: list[int]
    accepted: list[int]
    observed: list[int]  # verdict unknown (flow data): classified by the exemptions in force

    def __len__(self) -> int:
        return len(self.cidrs)


@dataclass(frozen=True)
class HourCounts:
    """What one report adds to each address's hour (columns, like `ReportCounts`)."""

    cidrs: list[str]
    families: list[int]
    numbers: list[int]
    blocked: list[int]
    accepted: list[int]
    tenant_ids: list[UUID | None]


@dataclass(frozen=True)
class HourTotal:
    """An address's hour after the upsert, with what this report added to it."""

    cidr: str
    family: int
    number: int
    hour: datetime
    blocked: int
    accepted: int
    added_blocked: int
    added_accepted: int
    tenant_id: UUID | None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)

    def crossed(self, field: str, threshold: float) -> bool:
        """True if this report took the count from at or below `threshold` to above it."""
        total = self.blocked if field == "blocked" else self.accepted
        added = self.added_blocked if field == "blocked" else self.added_accepted
        return total - added <= threshold < total


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def span_q(families: list[int], numbers: list[int]) -> Q:
    """Blocks that may contain one of the addresses: per family, those overlapping [lowest, highest]."""
    q = Q(pk__in=[])
    for version in (4, 6):
        of_family = [n for f, n in zip(families, numbers, strict=True) if f == version]
        if of_family:
            width = 8 if version == 4 else 32
            low, high = f"{min(of_family):0{width}x}", f"{max(of_family):0{width}x}"
            q |= Q(family=version, first__lte=high, last__gte=low)
    return q


def holders_at(families: list[int], numbers: list[int], when: datetime) -> list[UUID | None]:
    """The tenant that held each address at `when` (None where nobody did)."""
    if not numbers:
        return []
    holders: PrefixMap[UUID] = PrefixMap()
    allocations = Allocation.objects.held_at(when).filter(span_q(families, numbers))
    # Most recent assignment first: where two rows overlap, the newer one describes `when`.
    for cidr, holder in allocations.order_by("-assigned_at").values_list("cidr", "tenant_id"):
        holders.add(cidr, holder)
    if not holders:
        return [None] * len(numbers)
    get = holders.get_number
    return [get(f, n) for f, n in zip(families, numbers, strict=True)]


def upsert_hours(
    hour: datetime, counts: HourCounts, *, estimated: bool, over: tuple[int, int] = (-1, -1)
) -> list[HourTotal]:
    """Add `counts` to their address-hour rows, creating them as needed; the new totals of the
    rows with more than `over` = (blocked, accepted) connections (all rows by default).

    `counts` must name each address once (the caller sums duplicates). Returning only the rows
    that may have crossed a threshold keeps a 100,000-address report from shipping 100,000 rows
    back to Python.
    """
    if not counts.cidrs:
        return []
    firsts = [
        f"{n:08x}" if f == 4 else f"{n:032x}" for f, n in zip(counts.families, counts.numbers, strict=True)
    ]
    if connection.vendor == "postgresql":
        returned = _upsert_postgresql(hour, counts, firsts, estimated, over)
    else:
        returned = []
        for start in range(0, len(firsts), SQLITE_BATCH):
            returned += _upsert_sqlite(hour, counts, firsts, start, estimated)
        returned = [row for row in returned if row[1] > over[0] or row[2] > over[1]]
    if not returned:
        return []
    position = dict(zip(counts.cidrs, range(len(firsts)), strict=True))
    totals = []
    for cidr, blocked, accepted, tenant_id in returned:
        i = position[cidr]
        totals.append(
            HourTotal(
                cidr=cidr,
                family=counts.families[i],
                number=counts.numbers[i],
                hour=hour,
                blocked=blocked,
                accepted=accepted,
                added_blocked=counts.blocked[i],
                added_accepted=counts.accepted[i],
                tenant_id=_uuid(tenant_id),
            )
        )
    return totals


def _uuid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def _on_conflict() -> str:
    return (
        'ON CONFLICT (family, "first", hour) DO UPDATE SET '
        "blocked = t.blocked + excluded.blocked, "
        "accepted = t.accepted + excluded.accepted, "
        "estimated = t.estimated OR excluded.estimated, "
        # The first report of the hour decides who held the address during it.
        "tenant_id = COALESCE(t.tenant_id, excluded.tenant_id) "
        "RETURNING cidr, blocked, accepted, tenant_id"
    )


def _table() -> str:
    return connection.ops.quote_name(SmtpHour._meta.db_table)


def _joined(values: list[Any]) -> str:
    # psycopg adapts a list element by element in Python; one comma-joined string per column,
    # split by PostgreSQL's string_to_array, costs a join (no value here contains a comma).
    return ",".join(map(str, values))


def _upsert_postgresql(
    hour: datetime, counts: HourCounts, firsts: list[str], estimated: bool, over: tuple[int, int]
) -> list[tuple[Any, ...]]:
    tenants = ",".join("" if t is None else str(t) for t in counts.tenant_ids)
    # A data-modifying CTE, so that only the rows over `over` come back.
    sql = (
        f'WITH up AS (INSERT INTO {_table()} AS t (cidr, family, "first", "last", hour, blocked, '  # noqa: S608 - table name from the model, values bound
        "accepted, estimated, tenant_id) "
        "SELECT u.cidr, u.family, u.first, u.first, %s, u.blocked, u.accepted, %s, u.tenant_id "
        "FROM unnest(string_to_array(%s, ','), string_to_array(%s, ',')::smallint[], "
        "string_to_array(%s, ','), string_to_array(%s, ',')::bigint[], "
        "string_to_array(%s, ',')::bigint[], string_to_array(%s, ',', '')::uuid[]) "
        "AS u(cidr, family, first, blocked, accepted, tenant_id) "
        + _on_conflict()
        + ") SELECT cidr, blocked, accepted, tenant_id FROM up WHERE blocked > %s OR accepted > %s"
    )
    params: list[Any] = [hour, estimated, _joined(counts.cidrs), _joined(counts.families), ",".join(firsts)]
    params += [_joined(counts.blocked), _joined(counts.accepted), tenants, over[0], over[1]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def _upsert_sqlite(
    hour: datetime, counts: HourCounts, firsts: list[str], start: int, estimated: bool
) -> list[tuple[Any, ...]]:
    stored_hour = connection.ops.adapt_datetimefield_value(hour)
    tenant_field = SmtpHour._meta.get_field("tenant")
    params: list[Any] = []
    end = min(start + SQLITE_BATCH, len(firsts))
    for i in range(start, end):
        tenant_id = counts.tenant_ids[i]
        tenant = tenant_field.get_db_prep_value(tenant_id, connection) if tenant_id else None
        first = firsts[i]
        params += [counts.cidrs[i], counts.families[i], first, first, stored_hour]
        params += [counts.blocked[i], counts.accepted[i], estimated, tenant]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * (end - start))
    sql = (
        f'INSERT INTO {_table()} AS t (cidr, family, "first", "last", hour, blocked, accepted, '  # noqa: S608 - table name from the model, values bound
        f"estimated, tenant_id) VALUES {values} " + _on_conflict()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
