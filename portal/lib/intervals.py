"""Which monitored addresses a zone lists, and what changed since the last import.

Both inputs are sorted by (version, first) and made of non-overlapping runs, so one merge sweep
answers in O(n + m) with constant memory: the zone's runs (`ZoneInterval`, from
`ResolvedZone.intervals()`) against the allocated blocks, and the previous hits against the new
ones. Results are runs of addresses, not single addresses: an IPv6 allocation is far too large to
enumerate, and every address in a run counts (`Hit.size`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

from portal.lib.zonefile import ZoneInterval

type Kind = Literal["listed", "delisted", "changed"]


class Hit(NamedTuple):
    """A run of monitored addresses that the zone answers with the same A values."""

    version: int
    first: int
    last: int
    values: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def addresses(self) -> Iterator[str]:
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        for number in range(self.first, self.last + 1):
            yield str(make(number))


class Transition(NamedTuple):
    version: int
    first: int
    last: int
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        if not self.before:
            return "listed"
        if not self.after:
            return "delisted"
        return "changed"


class Block(NamedTuple):
    version: int
    first: int
    last: int


def block(cidr: str) -> Block:
    network = ipaddress.ip_network(cidr)
    return Block(network.version, int(network.network_address), int(network.broadcast_address))


def _key(version: int, address: int) -> int:
    # One integer orders (version, address): every IPv4 key sorts before every IPv6 key.
    return version << 128 | address


def coalesce_blocks(blocks: Iterable[Block]) -> Iterator[Block]:
    """Merge sorted blocks that overlap or touch (two tenants' allocations may be adjacent)."""
    current: Block | None = None
    for item in blocks:
        if current is not None and _key(item.version, item.first) < _key(current.version, current.first):
            raise ValueError(f"allocations are not sorted: {item} after {current}")
        if current is not None and item.version == current.version and item.first <= current.last + 1:
            if item.last > current.last:
                current = current._replace(last=item.last)
            continue
        if current is not None:
            yield current
        current = item
    if current is not None:
        yield current


def intersect(zone: Iterable[ZoneInterval], allocations: Iterable[Block]) -> Iterator[Hit]:
    """The listed runs inside the allocations; both sorted by (version, first)."""
    return coalesce_hits(_intersect(iter(zone), coalesce_blocks(allocations)))


def _intersect(zone: Iterator[ZoneInterval], allocations: Iterator[Block]) -> Iterator[Hit]:
    listed = next(zone, None)
    allocated = next(allocations, None)
    while listed is not None and allocated is not None:
        listed_first, listed_last = _key(listed.version, listed.first), _key(listed.version, listed.last)
        allocated_first = _key(allocated.version, allocated.first)
        allocated_last = _key(allocated.version, allocated.last)
        first, last = max(listed_first, allocated_first), min(listed_last, allocated_last)
        if first <= last:
            yield Hit(
                listed.version,
                listed.first + first - listed_first,
                listed.first + last - listed_first,
                listed.values,
            )
        # Advance whichever ends first: it can meet nothing further on the other side.
        if listed_last < allocated_last:
            listed = next(zone, None)
        else:
            allocated = next(allocations, None)


def coalesce_hits(hits: Iterable[Hit]) -> Iterator[Hit]:
    """Merge sorted runs with the same answer that overlap or touch: one canonical form."""
    pending: Hit | None = None
    for hit in hits:
        if (
            pending is not None
            and pending.version == hit.version
            and hit.first <= pending.last + 1
            and pending.values == hit.values
        ):
            if hit.last > pending.last:
                pending = pending._replace(last=hit.last)
            continue
        if pending is not None:
            yield pending
        pending = hit
    if pending is not None:
        yield pending


def diff(previous: Iterable[Hit], current: Iterable[Hit]) -> Iterator[Transition]:
    """Runs whose answer changed between two imports (both sorted, non-overlapping)."""
    return _coalesce_transitions(_diff(iter(previous), iter(current)))


def _diff(previous: Iterator[Hit], current: Iterator[Hit]) -> Iterator[Transition]:
    before, after = next(previous, None), next(current, None)
    position = 0  # key of the first address not yet compared
    while before is not None or after is not None:
        runs = [run for run in (before, after) if run is not None]
        starts = [max(_key(run.version, run.first), position) for run in runs]
        start = min(starts)
        ends = [_key(run.version, run.last) for run in runs]
        # The next boundary: the end of a run that covers `start`, or the start of the other run.
        stop = min(
            [end for s, end in zip(starts, ends, strict=True) if s == start]
            + [s - 1 for s in starts if s > start]
        )
        old = (
            before.values
            if before is not None and max(_key(before.version, before.first), position) == start
            else ()
        )
        new = (
            after.values
            if after is not None and max(_key(after.version, after.first), position) == start
            else ()
        )
        if old != new:
            version = start >> 128
            mask = (1 << 128) - 1
            yield Transition(version, start & mask, stop & mask, old, new)
        position = stop + 1
        if before is not None and _key(before.version, before.last) < position:
            before = next(previous, None)
        if after is not None and _key(after.version, after.last) < position:
            after = next(current, None)


def _coalesce_transitions(transitions: Iterable[Transition]) -> Iterator[Transition]:
    pending: Transition | None = None
    for item in transitions:
        if (
            pending is not None
            and pending.version == item.version
            and pending.last + 1 == item.first
            and (pending.before, pending.after) == (item.before, item.after)
        ):
            pending = pending._replace(last=item.last)
            continue
        if pending is not None:
            yield pending
        pending = item
    if pending is not None:
        yield pending
