"""Parsing and comparing IP blocks the same way on SQLite and PostgreSQL.

A block is stored as its CIDR text plus its family and its first and last address as fixed-width
hex strings, so that "does A overlap B" is a plain string range comparison that every database
indexes well and IPv6 (128-bit) needs no special column type.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockError(ValueError):
    """Input that is not a usable address or block; the message says what to type instead."""


@dataclass(frozen=True)
class Bounds:
    family: int
    first: str
    last: str


def parse_block(text: str) -> Network:
    """Parse one address or CIDR block written by a person, with errors that explain the fix."""
    value = text.strip()
    if not value:
        raise BlockError("Enter an IPv4 or IPv6 address, or a CIDR block such as 203.0.113.8/29.")
    if any(ch.isspace() for ch in value):
        raise BlockError(f"“{value}” contains spaces; enter one address or block per line.")
    if "%" in value:
        # A zone index (fe80::1%eth0) names a local interface; it means nothing to a firewall.
        address_part, _, rest = value.partition("%")
        zone = rest.partition("/")[0]
        raise BlockError(
            f"“{value}” has a zone index (%{zone}); enter the address without it, e.g. {address_part}."
        )
    if "/" in value:
        address_part, _, prefix_part = value.partition("/")
        if not (prefix_part.isascii() and prefix_part.isdigit()):
            raise BlockError(
                f"“{value}” has an invalid prefix length; write it as a number, e.g. {address_part}/29."
            )
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.ip_network(value, strict=False)
            raise BlockError(
                f"“{value}” has host bits set; the block containing it is {network}. "
                f"Enter {network}, or the single address {value.partition('/')[0]}."
            ) from None
        if "/" in value:
            address = value.partition("/")[0]
            try:
                addr = ipaddress.ip_address(address)
            except ValueError:
                pass
            else:
                limit = 32 if addr.version == 4 else 128
                raise BlockError(
                    f"“{value}” has a prefix length over /{limit}; IPv{addr.version} prefixes "
                    f"go from /0 to /{limit}."
                ) from None
        raise BlockError(
            f"“{value}” is not an IP address or CIDR block. Use a form such as 203.0.113.10, "
            "203.0.113.8/29 or 2001:db8::25."
        ) from None


def bounds(network: Network) -> Bounds:
    width = 8 if network.version == 4 else 32
    first = int(network.network_address)
    last = int(network.broadcast_address)
    return Bounds(network.version, f"{first:0{width}x}", f"{last:0{width}x}")


def supernet_firsts(network: Network) -> list[str]:
    """The first address (as in `bounds`) of every block that contains `network`, itself included."""
    width = 8 if network.version == 4 else 32
    starts = {int(network.supernet(new_prefix=p).network_address) for p in range(network.prefixlen + 1)}
    return [f"{start:0{width}x}" for start in sorted(starts)]
