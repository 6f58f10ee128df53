"""Longest-prefix match of many addresses against a set of CIDR blocks, in memory.

Telemetry reports name up to 100,000 addresses at once; asking the database which allocation or
exemption covers each would be 100,000 queries. A dict per prefix length answers each address in
at most as many look-ups as there are distinct prefix lengths among the blocks (a handful).
"""

from __future__ import annotations

import ipaddress


class PrefixMap[V]:
    def __init__(self) -> None:
        # (version, prefix length) -> {network number: value}
        self._tables: dict[tuple[int, int], dict[int, V]] = {}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}

    def add(self, cidr: str, value: V) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        key = (network.version, network.prefixlen)
        if key not in self._tables:
            self._tables[key] = {}
            self._lengths[network.version] = sorted({*self._lengths[network.version], network.prefixlen})[
                ::-1
            ]
        # The first value given for a block wins, so callers decide precedence by their order.
        self._tables[key].setdefault(int(network.network_address), value)

    def get(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> V | None:
        """The value of the most specific block containing `address`, or None."""
        return self.get_number(address.version, int(address))

    def get_number(self, version: int, number: int) -> V | None:
        """`get` for an address given as its family and number, which callers holding 100,000
        addresses keep instead of an address object each."""
        shift = 32 if version == 4 else 128
        for length in self._lengths[version]:
            value = self._tables[(version, length)].get(number >> (shift - length) << (shift - length))
            if value is not None:
                return value
        return None

    def __bool__(self) -> bool:
        return bool(self._tables)
