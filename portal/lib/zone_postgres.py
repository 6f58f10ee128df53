"""The zone intersection done by PostgreSQL: `inet`/`cidr` overlap through a GiST index.

Gives the same runs as `intervals.intersect`, for deployments that would rather let the database
join a zone against allocations it already holds. The allocations are any query whose first column
is a CIDR (text or `cidr`), so this does not depend on where the allocation model lives.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from django.db.backends.utils import CursorWrapper

from portal.lib.intervals import Hit, coalesce_hits
from portal.lib.zonefile import ZoneInterval

COPY_CHUNK = 1 << 20  # characters per COPY write: large enough to amortise the calls

INTERSECT_SQL = """
SELECT family(overlap), host(network(overlap)), host(broadcast(overlap)), answer
FROM (
    SELECT CASE WHEN masklen(z.block) >= masklen(a.block) THEN z.block ELSE a.block END AS overlap,
           z.answer
    FROM (SELECT raw.block::cidr AS block FROM ({allocations}) AS raw(block)) AS a
    JOIN pg_temp.zone_block AS z ON z.block && a.block
) AS hits
ORDER BY family(overlap), overlap
"""


def cidr_blocks(version: int, first: int, last: int) -> Iterator[tuple[int, int]]:
    """The fewest CIDR blocks covering first..last exactly, as (network, prefix length)."""
    width = 32 if version == 4 else 128
    while first <= last:
        # The largest block that starts at `first` (alignment) and does not pass `last`.
        size = first & -first if first else 1 << width
        while size > last - first + 1:
            size >>= 1
        yield first, width - size.bit_length() + 1
        first += size


def _zone_rows(zone: Iterable[ZoneInterval]) -> Iterator[str]:
    for run in zone:
        answer = ",".join(run.values)
        make = ipaddress.IPv4Address if run.version == 4 else ipaddress.IPv6Address
        for network, prefix in cidr_blocks(run.version, run.first, run.last):
            yield f"{make(network)}/{prefix}\t{answer}\n"


def load_zone(cursor: psycopg.Cursor[Any] | CursorWrapper, zone: Iterable[ZoneInterval]) -> int:
    """COPY the zone into the session's temporary `zone_block` table, indexed; returns its rows."""
    cursor.execute("DROP TABLE IF EXISTS pg_temp.zone_block")
    cursor.execute("CREATE TEMPORARY TABLE zone_block (block cidr NOT NULL, answer text NOT NULL)")
    rows = 0
    with cursor.copy("COPY pg_temp.zone_block (block, answer) FROM STDIN") as copy:
        buffer: list[str] = []
        size = 0
        for row in _zone_rows(zone):
            buffer.append(row)
            size += len(row)
            rows += 1
            if size >= COPY_CHUNK:
                copy.write("".join(buffer))
                buffer, size = [], 0
        copy.write("".join(buffer))
    cursor.execute("CREATE INDEX ON pg_temp.zone_block USING gist (block inet_ops)")
    # Temporary tables are never auto-analysed; without statistics the planner guesses badly.
    cursor.execute("ANALYZE pg_temp.zone_block")
    return rows


def intersect_on_postgres(
    cursor: psycopg.Cursor[Any] | CursorWrapper, allocations_sql: str, zone: Iterable[ZoneInterval]
) -> list[Hit]:
    """The listed runs inside the allocations, as `intervals.intersect` returns them.

    `allocations_sql` is trusted SQL (written by us, never by a user), e.g.
    "SELECT cidr FROM accounts_allocation".
    """
    load_zone(cursor, zone)
    cursor.execute(INTERSECT_SQL.format(allocations=allocations_sql))
    hits = []
    for family, first, last, answer in cursor.fetchall():
        hits.append(
            Hit(
                family,
                int(ipaddress.ip_address(first)),
                int(ipaddress.ip_address(last)),
                tuple(answer.split(",")),
            )
        )
    cursor.execute("DROP TABLE pg_temp.zone_block")
    return list(coalesce_hits(hits))
