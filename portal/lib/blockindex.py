"""Which of many CIDR blocks cover or overlap a block, in memory: for bulk work that would
otherwise ask the database once per address (who held it, is it exempted).

Stored blocks are CIDR blocks, so two of them either nest or are disjoint: a block covering an
address starts where one of the address's supernets starts (at most 33 or 129 dictionary look-ups),
and a block overlapping a range either covers its start or starts inside it (one bisection).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

WIDTH = {4: 32, 6: 128}


@dataclass
class BlockIndex[T]:
    _by_start: dict[tuple[int, int], list[tuple[int, T]]] = field(default_factory=dict)
    _starts: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, blocks: Iterable[tuple[int, int, int, T]]) -> BlockIndex[T]:
        """From (version, first, last, payload); payloads of blocks with the same start keep order."""
        index: BlockIndex[T] = cls()
        for version, first, last, payload in blocks:
            index._by_start.setdefault((version, first), []).append((last, payload))
            index._starts.setdefault(version, []).append(first)
        for starts in index._starts.values():
            starts.sort()
        return index

    def covering(self, version: int, first: int, last: int) -> list[T]:
        """Payloads of the blocks that contain first..last, widest first."""
        found = []
        width = WIDTH[version]
        for prefix in range(width + 1):
            start = first & ~((1 << (width - prefix)) - 1)
            for end, payload in self._by_start.get((version, start), ()):
                if end >= last:
                    found.append(payload)
        return found

    def overlaps(self, version: int, first: int, last: int) -> bool:
        starts = self._starts.get(version, [])
        at = bisect.bisect_left(starts, first)
        if at < len(starts) and starts[at] <= last:
            return True
        return bool(self.covering(version, first, first))
