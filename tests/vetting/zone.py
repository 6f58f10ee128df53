"""The test DNS zone: one address, domain or zone entry per behaviour the checks must handle."""

from __future__ import annotations

import ipaddress
from typing import Any

from portal.lib.dns import reverse_label

DNSBL = "zen.test"
DBL = "dbl.test"


def ptr(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer


def listed(address: str) -> str:
    return f"{reverse_label(address)}.{DNSBL}"


def spf_include_chain(depth: int) -> dict[str, Any]:
    zone: dict[str, Any] = {}
    for i in range(depth):
        zone[f"l{i}.loop.example"] = {"TXT": [f"v=spf1 include:l{i + 1}.loop.example -all"]}
    zone[f"l{depth}.loop.example"] = {"TXT": ["v=spf1 ip4:203.0.113.0/24 -all"]}
    zone["loop.example"] = {"TXT": ["v=spf1 include:l0.loop.example -all"]}
    return zone


ZONE: dict[str, Any] = {
    # Reverse DNS
    ptr("203.0.113.10"): {"PTR": ["mail.acme.example."]},
    "mail.acme.example": {"A": ["203.0.113.10"]},
    ptr("203.0.113.11"): {"PTR": ["host.other.example."]},
    "host.other.example": {"A": ["198.51.100.1"]},
    ptr("203.0.113.13"): {"PTR": ["203-0-113-13.dynamic.isp.example."]},
    "203-0-113-13.dynamic.isp.example": {"A": ["203.0.113.13"]},
    ptr("203.0.113.14"): "SERVFAIL",
    ptr("2001:db8:a::25"): {"PTR": ["mx6.acme.example."]},
    "mx6.acme.example": {"AAAA": ["2001:db8:a::25"]},
    # DNSBL answers
    listed("203.0.113.20"): {"A": ["127.0.0.2", "127.0.0.3"]},
    listed("203.0.113.21"): {"A": ["127.0.0.10"]},
    listed("203.0.113.22"): {"A": ["127.255.255.254"]},
    listed("203.0.113.23"): "SERVFAIL",
    listed("203.0.113.24"): "TIMEOUT",
    listed("2001:db8:a::25"): {"A": ["127.0.0.4"]},
    # SPF and DMARC
    "acme.example": {
        "TXT": ["google-site-verification=abc", "v=spf1 ip4:203.0.113.0/28 include:_spf.acme.example -all"],
        "MX": ["10 mail.acme.example."],
    },
    "_spf.acme.example": {"TXT": ["v=spf1 ip6:2001:db8:a::/64 a:mail.acme.example ~all"]},
    "_dmarc.acme.example": {"TXT": ["v=DMARC1; p=reject; rua=mailto:d@acme.example"]},
    "mxonly.example": {"TXT": ["v=spf1 mx -all"], "MX": ["10 mail.acme.example."]},
    "redirected.example": {"TXT": ["v=spf1 redirect=acme.example"]},
    "weak.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 ~all"]},
    "_dmarc.weak.example": {"TXT": ["v=DMARC1; p=none"]},
    "nospf.example": {"TXT": ["hello"]},
    "twospf.example": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
    "broken.example": "SERVFAIL",
    "shop.acme.example": {"TXT": ["v=spf1 include:acme.example -all"]},
    # DBL
    f"bad.example.{DBL}": {"A": ["127.0.1.2"]},
    **spf_include_chain(11),
}
