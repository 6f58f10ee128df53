"""The nftables side: the table the agent owns and the text of each transaction.

Every change is one `nft -f -` run, which the kernel applies as one transaction: packets see
the old set or the new one, never half a batch, and a batch that fails changes nothing.
`run_nft` is the only place that changes the kernel (`counters.list_set` reads it).

Beside the exemption sets the table holds four counting sets (telemetry, docs/enforcement.md):
per source address, the new port-25 connections accepted and blocked.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NftRunner = Callable[[str], None]

PORT = 25
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
CHUNK = 1000  # elements per statement: keeps lines short for large sets
# (verdict, family) -> the counting set. Fixed names: the reader and the docs rely on them.
COUNTER_SETS = {
    ("blocked", 4): "smtp_blocked4",
    ("blocked", 6): "smtp_blocked6",
    ("accepted", 4): "smtp_accepted4",
    ("accepted", 6): "smtp_accepted6",
}
# A SYN without ACK opens a connection; retransmitted SYNs of a blocked connection count again,
# as they are attempts too. Stateless, so conntrack needn't be loaded.
NEW_CONNECTION = "tcp flags & (fin | syn | rst | ack) == syn"


class NftError(Exception):
    """nft refused a transaction (nothing was changed) or could not be run."""


@dataclass(frozen=True)
class Names:
    table: str = "egress_port25"
    set4: str = "exempt4"
    set6: str = "exempt6"

    def __post_init__(self) -> None:
        for what, name in (("table", self.table), ("IPv4 set", self.set4), ("IPv6 set", self.set6)):
            if not NAME.match(name):
                raise ValueError(
                    f"The {what} name {name!r} won't do: "
                    "use a letter, then letters, digits or _ (64 at most)."
                )
        if self.set4 == self.set6:
            raise ValueError("The IPv4 and IPv6 sets need different names.")
        if {self.set4, self.set6} & set(COUNTER_SETS.values()):
            raise ValueError(f"The names {', '.join(COUNTER_SETS.values())} are the agent's counting sets.")


@dataclass(frozen=True)
class Counting:
    """Bounds of the counting sets: at most `size` addresses each, each forgotten `timeout`
    seconds after its first connection (the counter then starts again from zero)."""

    size: int = 65536
    timeout: int = 3600


@dataclass(frozen=True)
class Elements:
    """What the two sets hold: overlapping and adjacent blocks merged, because an interval set
    refuses an element that overlaps another."""

    v4: frozenset[ipaddress.IPv4Network]
    v6: frozenset[ipaddress.IPv6Network]

    @classmethod
    def of(cls, blocks: Iterable[Network]) -> Elements:
        blocks = list(blocks)
        v4 = [b for b in blocks if isinstance(b, ipaddress.IPv4Network)]
        v6 = [b for b in blocks if isinstance(b, ipaddress.IPv6Network)]
        return cls(frozenset(ipaddress.collapse_addresses(v4)), frozenset(ipaddress.collapse_addresses(v6)))


def element(network: Network) -> str:
    return str(network.network_address) if network.num_addresses == 1 else network.with_prefixlen


def _sorted(networks: Iterable[Network]) -> list[str]:
    return [element(n) for n in sorted(networks, key=lambda n: (n.version, int(n.network_address)))]


def _element_statements(verb: str, names: Names, set_name: str, networks: Iterable[Network]) -> list[str]:
    items = _sorted(networks)
    return [
        f"{verb} element inet {names.table} {set_name} {{ {', '.join(items[i : i + CHUNK])} }}"
        for i in range(0, len(items), CHUNK)
    ]


def _chain_rules(names: Names) -> list[str]:
    # The counting rules carry no verdict: when a counting set is full, `add @set` ends its rule,
    # and the verdict must not depend on that.
    new = f"tcp dport {PORT} {NEW_CONNECTION}"
    return [
        f"{new} ip saddr @{names.set4} add @{COUNTER_SETS['accepted', 4]} {{ ip saddr counter }}",
        f"{new} ip6 saddr @{names.set6} add @{COUNTER_SETS['accepted', 6]} {{ ip6 saddr counter }}",
        f"tcp dport {PORT} ip saddr @{names.set4} accept",
        f"tcp dport {PORT} ip6 saddr @{names.set6} accept",
        f"{new} meta nfproto ipv4 add @{COUNTER_SETS['blocked', 4]} {{ ip saddr counter }}",
        f"{new} meta nfproto ipv6 add @{COUNTER_SETS['blocked', 6]} {{ ip6 saddr counter }}",
        f"tcp dport {PORT} counter drop",
    ]


def _counter_sets(names: Names, counting: Counting) -> list[str]:
    return [
        f"add set inet {names.table} {name} {{ type ipv{family}_addr; size {counting.size}; "
        f"flags dynamic,timeout; timeout {counting.timeout}s; counter; }}"
        for (_, family), name in COUNTER_SETS.items()
    ]


CHAINS = (("forward", "forward"), ("output", "output"))


def replace_table(names: Names, elements: Elements, counting: Counting = Counting()) -> str:
    """The whole table, replacing whatever is there (rules and sets) in one transaction. The
    counters start again from zero."""
    t = names.table
    lines = [
        f"add table inet {t}",  # so that the delete below can't fail on a fresh machine
        f"delete table inet {t}",
        f"add table inet {t}",
        f"add set inet {t} {names.set4} {{ type ipv4_addr; flags interval; }}",
        f"add set inet {t} {names.set6} {{ type ipv6_addr; flags interval; }}",
        *_counter_sets(names, counting),
    ]
    for chain, hook in CHAINS:
        lines.append(
            f"add chain inet {t} {chain} {{ type filter hook {hook} priority filter; policy accept; }}"
        )
        lines += [f"add rule inet {t} {chain} {rule}" for rule in _chain_rules(names)]
    lines += _element_statements("add", names, names.set4, elements.v4)
    lines += _element_statements("add", names, names.set6, elements.v6)
    return "\n".join(lines) + "\n"


def ensure_table(names: Names, counting: Counting = Counting()) -> str:
    """Create the table if it is missing and rewrite its rules, leaving the exemption sets'
    elements alone: at start, before the portal has answered, whatever the kernel enforces stays
    in force. The counting sets are made anew (their bounds may have changed), from zero."""
    t = names.table
    lines = [
        f"add table inet {t}",
        f"add set inet {t} {names.set4} {{ type ipv4_addr; flags interval; }}",
        f"add set inet {t} {names.set6} {{ type ipv6_addr; flags interval; }}",
        *_counter_sets(names, counting),  # so that the deletes below can't fail
    ]
    for chain, hook in CHAINS:
        lines.append(
            f"add chain inet {t} {chain} {{ type filter hook {hook} priority filter; policy accept; }}"
        )
        lines.append(f"flush chain inet {t} {chain}")
    # A set still referenced by a rule can't be deleted: the chains were flushed first.
    lines += [f"delete set inet {t} {name}" for name in COUNTER_SETS.values()]
    lines += _counter_sets(names, counting)
    for chain, _ in CHAINS:
        lines += [f"add rule inet {t} {chain} {rule}" for rule in _chain_rules(names)]
    return "\n".join(lines) + "\n"


def empty_sets(names: Names, counting: Counting = Counting()) -> str:
    """Fail closed: no source is exempt, port 25 is dropped for everyone."""
    return ensure_table(names, counting) + (
        f"flush set inet {names.table} {names.set4}\nflush set inet {names.table} {names.set6}\n"
    )


def update_sets(names: Names, before: Elements, after: Elements) -> str:
    """The smallest transaction turning `before` into `after` ("" when they are equal).

    Deletions come first: a merged block may be replaced by a larger one that overlaps it.
    """
    lines = [
        *_element_statements("delete", names, names.set4, before.v4 - after.v4),
        *_element_statements("delete", names, names.set6, before.v6 - after.v6),
        *_element_statements("add", names, names.set4, after.v4 - before.v4),
        *_element_statements("add", names, names.set6, after.v6 - before.v6),
    ]
    return "\n".join(lines) + "\n" if lines else ""


def run_nft(text: str) -> None:
    """Apply `text` as one nftables transaction."""
    try:
        done = subprocess.run(
            ["nft", "-f", "-"],  # noqa: S607 - nft is found on PATH like any system tool
            input=text,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except FileNotFoundError:
        raise NftError("nft is not installed or not on PATH (apt-get install nftables).") from None
    except subprocess.TimeoutExpired:
        raise NftError("nft did not finish within 120 seconds.") from None
    if done.returncode != 0:
        raise NftError((done.stderr or done.stdout).strip() or f"nft exited with status {done.returncode}.")
