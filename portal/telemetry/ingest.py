"""Storing a report's counts: who held each address, and the hourly upsert.

The upsert is one statement per batch, `INSERT … ON CONFLICT (family, first, hour) DO UPDATE SET
blocked = blocked + excluded.blocked …`, so that two agents (or two reports) counting the same
address in the same hour add up instead of overwriting each other, without reading first.
`bulk_create(update_conflicts=True)` can only overwrite. PostgreSQL gets the whole report as
arrays through `unnest` (one round trip for 100,000 rows); SQLite, which has the same ON CONFLICT
clause but no arrays, gets multi-row VALUES in batches under its limit of bound variables.
Both return the totals after the update, from which the caller sees which rows just crossed a
threshold: that is what makes a signal fire once, however the counts arrive.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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
class HourCount:
    """What one report adds to one address's hour."""

    address: Address
    blocked: int
    accepted: int
    tenant_id: UUID | None


@dataclass(frozen=True)
class HourTotal:
    """An address's hour after the upsert, with what this report added to it."""

    address: Address
    hour: datetime
    blocked: int
    accepted: int
    added_blocked: int
    added_accepted: int
    tenant_id: UUID | None

    @property
    def cidr(self) -> str:
        return str(self.address)

    def crossed(self, field: str, threshold: float) -> bool:
        """True if this report took the count from at or below `threshold` to above it."""
        total = self.blocked if field == "blocked" else self.accepted
        added = self.added_blocked if field == "blocked" else self.added_accepted
        return total - added <= threshold < total


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def span_q(addresses: Iterable[Address]) -> Q:
    """Blocks that may contain one of `addresses`: per family, those overlapping [lowest, highest]."""
    by_family: dict[int, list[int]] = {}
    for address in addresses:
        by_family.setdefault(address.version, []).append(int(address))
    q = Q(pk__in=[])
    for version, numbers in by_family.items():
        width = 8 if version == 4 else 32
        low, high = f"{min(numbers):0{width}x}", f"{max(numbers):0{width}x}"
        q |= Q(family=version, first__lte=high, last__gte=low)
    return q


def holders_at(addresses: list[Address], when: datetime) -> dict[Address, UUID]:
    """The tenant that held each address at `when` (addresses nobody held are left out)."""
    if not addresses:
        return {}
    holders: PrefixMap[UUID] = PrefixMap()
    allocations = Allocation.objects.held_at(when).filter(span_q(addresses))
    # Most recent assignment first: where two rows overlap, the newer one describes `when`.
    for cidr, holder in allocations.order_by("-assigned_at").values_list("cidr", "tenant_id"):
        holders.add(cidr, holder)
    if not holders:
        return {}
    found = {}
    for address in addresses:
        tenant_id = holders.get(address)
        if tenant_id is not None:
            found[address] = tenant_id
    return found


def upsert_hours(
    hour: datetime, counts: list[HourCount], *, estimated: bool, over: tuple[int, int] = (-1, -1)
) -> list[HourTotal]:
    """Add `counts` to their address-hour rows, creating them as needed; the new totals of the
    rows with more than `over` = (blocked, accepted) connections (all rows by default).

    `counts` must name each address once (the caller sums duplicates). Returning only the rows
    that may have crossed a threshold keeps a 100,000-address report from shipping 100,000 rows
    back to Python.
    """
    if not counts:
        return []
    by_cidr = {str(c.address): c for c in counts}
    if connection.vendor == "postgresql":
        returned = _upsert_postgresql(hour, counts, estimated, over)
    else:
        returned = []
        for start in range(0, len(counts), SQLITE_BATCH):
            returned += _upsert_sqlite(hour, counts[start : start + SQLITE_BATCH], estimated)
        returned = [row for row in returned if row[1] > over[0] or row[2] > over[1]]
    totals = []
    for cidr, blocked, accepted, tenant_id in returned:
        count = by_cidr[cidr]
        totals.append(
            HourTotal(
                address=count.address,
                hour=hour,
                blocked=blocked,
                accepted=accepted,
                added_blocked=count.blocked,
                added_accepted=count.accepted,
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


def _first(address: Address) -> str:
    # What `bounds()` gives for a single address, without building a network object for each.
    return f"{int(address):0{8 if address.version == 4 else 32}x}"


def _upsert_postgresql(
    hour: datetime, counts: list[HourCount], estimated: bool, over: tuple[int, int]
) -> list[tuple[Any, ...]]:
    cidrs = [str(c.address) for c in counts]
    families = [c.address.version for c in counts]
    firsts = [_first(c.address) for c in counts]
    blocked = [c.blocked for c in counts]
    accepted = [c.accepted for c in counts]
    tenants = [c.tenant_id for c in counts]
    # A data-modifying CTE, so that only the rows over `over` come back.
    sql = (
        f'WITH up AS (INSERT INTO {_table()} AS t (cidr, family, "first", "last", hour, blocked, '  # noqa: S608 - table name from the model, values bound
        "accepted, estimated, tenant_id) "
        "SELECT u.cidr, u.family, u.first, u.first, %s, u.blocked, u.accepted, %s, u.tenant_id "
        "FROM unnest(%s::varchar[], %s::smallint[], %s::varchar[], %s::bigint[], %s::bigint[], "
        "%s::uuid[]) AS u(cidr, family, first, blocked, accepted, tenant_id) "
        + _on_conflict()
        + ") SELECT cidr, blocked, accepted, tenant_id FROM up WHERE blocked > %s OR accepted > %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [hour, estimated, cidrs, families, firsts, blocked, accepted, tenants, over[0], over[1]]
        )
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def _upsert_sqlite(hour: datetime, counts: list[HourCount], estimated: bool) -> list[tuple[Any, ...]]:
    stored_hour = connection.ops.adapt_datetimefield_value(hour)
    tenant_field = SmtpHour._meta.get_field("tenant")
    params: list[Any] = []
    for c in counts:
        tenant = tenant_field.get_db_prep_value(c.tenant_id, connection) if c.tenant_id else None
        first = _first(c.address)
        params += [str(c.address), c.address.version, first, first, stored_hour, c.blocked, c.accepted]
        params += [estimated, tenant]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(counts))
    sql = (
        f'INSERT INTO {_table()} AS t (cidr, family, "first", "last", hour, blocked, accepted, '  # noqa: S608 - table name from the model, values bound
        f"estimated, tenant_id) VALUES {values} " + _on_conflict()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
