"""A small SPF (RFC 7208) evaluator: does a domain's policy authorise an address?

It implements the mechanisms real policies use (all, ip4, ip6, a, mx, include, exists, ptr) and
the redirect modifier, with the ten-DNS-lookup limit. Macros are not expanded: a term that uses
them is skipped and noted, so the result errs towards "not authorised", never towards "pass".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from portal.lib.dns import Resolver

LOOKUP_LIMIT = 10
MX_LIMIT = 10
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


class SpfError(Exception):
    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result  # "permerror" or "temperror"
        self.reason = reason


@dataclass
class SpfOutcome:
    domain: str
    address: str
    result: str  # pass, fail, softfail, neutral, none, permerror, temperror
    matched: str = ""
    record: str = ""
    lookups: int = 0
    trail: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class _Evaluation:
    resolver: Resolver
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    lookups: int = 0
    trail: list[str] = field(default_factory=list)

    def count_lookup(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise SpfError("permerror", f"more than {LOOKUP_LIMIT} DNS lookups (at {term}); RFC 7208 4.6.4")

    def record_of(self, domain: str) -> str | None:
        lookup = self.resolver.txt(domain)
        if lookup.status == "error":
            raise SpfError("temperror", f"TXT lookup for {domain} failed: {lookup.error}")
        records = [t for t in lookup.answers if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
        if len(records) > 1:
            raise SpfError("permerror", f"{domain} publishes {len(records)} SPF records; it must publish one")
        return records[0] if records else None

    def check_host(self, domain: str, depth: int = 0) -> tuple[str, str, str]:
        """Returns (result, matched term, record) for `domain`."""
        if depth > LOOKUP_LIMIT:
            raise SpfError("permerror", "include/redirect loop")
        record = self.record_of(domain)
        if record is None:
            return "none", "", ""
        self.trail.append(f"{domain}: {record}")
        redirect = ""
        for term in record.split()[1:]:
            if "=" in term and ":" not in term.split("=", 1)[0]:
                name, _, value = term.partition("=")
                if name.lower() == "redirect":
                    redirect = value
                continue
            qualifier = QUALIFIERS.get(term[0], "")
            mechanism = term[1:] if qualifier else term
            qualifier = qualifier or "pass"
            if "%{" in mechanism:
                self.trail.append(f"{domain}: skipped {term} (macros are not evaluated)")
                continue
            if self.matches(mechanism, domain, depth):
                return qualifier, f"{domain}: {term}", record
        if redirect:
            self.count_lookup(f"redirect={redirect}")
            result, matched, _ = self.check_host(redirect, depth + 1)
            if result == "none":
                raise SpfError("permerror", f"redirect target {redirect} has no SPF record")
            return result, matched, record
        return "neutral", "", record

    def matches(self, mechanism: str, domain: str, depth: int) -> bool:
        name, _, argument = mechanism.partition(":")
        name = name.lower()
        if name.startswith(("a/", "mx/")) or name in ("a", "mx"):
            name, _, cidr = name.partition("/")
            if cidr:
                argument = f"{argument}/{cidr}" if argument else f"/{cidr}"
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(argument, strict=False)
            except ValueError:
                raise SpfError("permerror", f"invalid {name}:{argument}") from None
            return network.version == self.address.version and self.address in network
        if name == "include":
            self.count_lookup(mechanism)
            result, _, _ = self.check_host(argument, depth + 1)
            if result == "none":
                raise SpfError("permerror", f"include:{argument} has no SPF record")
            if result in ("permerror", "temperror"):
                raise SpfError(result, f"include:{argument} failed")
            return result == "pass"
        if name in ("a", "mx"):
            self.count_lookup(mechanism)
            target, v4, v6 = _split_cidr(argument, domain)
            hosts = [target]
            if name == "mx":
                lookup = self.resolver.query(target, "MX")
                if lookup.status == "error":
                    raise SpfError("temperror", f"MX lookup for {target} failed: {lookup.error}")
                hosts = list(lookup.answers)[:MX_LIMIT]
            return any(self._host_matches(host, v4, v6) for host in hosts)
        if name == "exists":
            self.count_lookup(mechanism)
            return self.resolver.query(argument, "A").found
        if name == "ptr":
            self.count_lookup(mechanism)
            return False  # deprecated (RFC 7208 5.5); never grants authorisation here
        raise SpfError("permerror", f"unknown mechanism {mechanism}")

    def _host_matches(self, host: str, v4: int, v6: int) -> bool:
        rdtype, prefix = ("A", v4) if self.address.version == 4 else ("AAAA", v6)
        lookup = self.resolver.query(host, rdtype)
        if lookup.status == "error":
            raise SpfError("temperror", f"{rdtype} lookup for {host} failed: {lookup.error}")
        for answer in lookup.answers:
            network = ipaddress.ip_network(f"{answer}/{prefix}", strict=False)
            if self.address in network:
                return True
        return False


def _split_cidr(argument: str, domain: str) -> tuple[str, int, int]:
    target, v4, v6 = argument, 32, 128
    if "//" in target:
        target, _, six = target.partition("//")
        v6 = int(six)
    if "/" in target:
        target, _, four = target.partition("/")
        v4 = int(four)
    return target or domain, v4, v6


def evaluate(resolver: Resolver, domain: str, address: str) -> SpfOutcome:
    evaluation = _Evaluation(resolver, ipaddress.ip_address(address))
    try:
        result, matched, record = evaluation.check_host(domain)
    except SpfError as exc:
        return SpfOutcome(
            domain, address, exc.result, lookups=evaluation.lookups, trail=evaluation.trail, reason=exc.reason
        )
    except ValueError as exc:
        return SpfOutcome(
            domain, address, "permerror", trail=evaluation.trail, reason=f"malformed term: {exc}"
        )
    return SpfOutcome(domain, address, result, matched, record, evaluation.lookups, evaluation.trail)
