"""DNS look-ups for the checks, through dnspython, with outcomes that never mistake an error for
an answer.

Every look-up returns a Lookup: either answers, "no such name/no data" (a real negative answer),
or an error with an explanation (timeout, SERVFAIL, REFUSED, ...). Callers decide what a
negative means; an error is never a negative.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename
from django.conf import settings

type Status = Literal["ok", "nxdomain", "nodata", "error"]


@dataclass(frozen=True)
class Lookup:
    name: str
    rdtype: str
    status: Status
    answers: tuple[str, ...] = ()
    error: str = ""

    @property
    def found(self) -> bool:
        return self.status == "ok"

    @property
    def negative(self) -> bool:
        """The name or the record type certainly does not exist (not: we could not find out)."""
        return self.status in ("nxdomain", "nodata")

    def as_evidence(self) -> dict[str, object]:
        evidence: dict[str, object] = {"query": f"{self.name} {self.rdtype}", "status": self.status}
        if self.answers:
            evidence["answers"] = list(self.answers)
        if self.error:
            evidence["error"] = self.error
        return evidence


@dataclass
class Resolver:
    """A thread-safe resolver for the configured nameservers, with a small shared cache."""

    nameservers: list[str] = field(default_factory=list)
    port: int = 53
    timeout: float = 3.0
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _cache: dns.resolver.LRUCache = field(default_factory=lambda: dns.resolver.LRUCache(4096), repr=False)

    @classmethod
    def from_settings(cls) -> Resolver:
        return cls(
            nameservers=list(settings.DNS_NAMESERVERS),
            port=settings.DNS_PORT,
            timeout=settings.DNS_TIMEOUT,
        )

    def _resolver(self) -> dns.resolver.Resolver:
        resolver: dns.resolver.Resolver | None = getattr(self._local, "resolver", None)
        if resolver is None:
            resolver = dns.resolver.Resolver(configure=not self.nameservers)
            if self.nameservers:
                resolver.nameservers = self.nameservers
                resolver.port = self.port
            resolver.timeout = self.timeout
            resolver.lifetime = self.timeout
            resolver.cache = self._cache
            self._local.resolver = resolver
        return resolver

    def query(self, name: str, rdtype: str) -> Lookup:
        try:
            answer = self._resolver().resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(name, rdtype, "nxdomain")
        except dns.resolver.LifetimeTimeout:
            return Lookup(name, rdtype, "error", error=f"no answer within {self.timeout:g}s (timeout)")
        except dns.resolver.NoNameservers as exc:
            return Lookup(name, rdtype, "error", error=_explain_no_nameservers(exc))
        except dns.exception.DNSException as exc:
            # The exception's text repeats the query name, which may carry a secret (a DQS key).
            return Lookup(name, rdtype, "error", error=f"the look-up failed ({type(exc).__name__})")
        if answer.rrset is None:
            return Lookup(name, rdtype, "nodata")
        return Lookup(name, rdtype, "ok", tuple(_text(rdata, rdtype) for rdata in answer.rrset))

    def ptr(self, address: str) -> Lookup:
        return self.query(dns.reversename.from_address(address).to_text(), "PTR")

    def addresses(self, hostname: str) -> tuple[Lookup, Lookup]:
        return self.query(hostname, "A"), self.query(hostname, "AAAA")

    def txt(self, name: str) -> Lookup:
        return self.query(name, "TXT")


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        strings = getattr(rdata, "strings", ())
        return b"".join(strings).decode("utf-8", errors="replace")
    if rdtype == "MX":
        return str(getattr(rdata, "exchange", rdata)).rstrip(".").lower()
    return str(rdata).rstrip(".").lower() if rdtype in ("PTR", "CNAME", "NS") else str(rdata)


RCODE_EXPLANATIONS = {
    "REFUSED": "the DNS server refused the query (REFUSED)",
    "SERVFAIL": "the DNS server failed to answer (SERVFAIL)",
    "NOTIMP": "the DNS server does not implement this query (NOTIMP)",
    "FORMERR": "the DNS server could not parse the query (FORMERR)",
}


def _explain_no_nameservers(exc: dns.resolver.NoNameservers) -> str:
    # Only fixed phrases: dnspython's own text names the query, which may carry a secret.
    text = str(exc)
    for rcode, explanation in RCODE_EXPLANATIONS.items():
        if rcode in text:
            return explanation
    return "no DNS server gave a usable answer"


def reverse_label(address: str) -> str:
    """The name to look up in a DNSBL zone: reversed octets for IPv4, nibbles for IPv6."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(reversed(str(ip).split(".")))
    return ".".join(reversed(ip.exploded.replace(":", "")))
