"""The DNS the demo answers from (make demo runs portal.demo.dnsserver with it), so that the
automated checks show real outcomes without the internet: clean, misconfigured and listed
addresses for the demo tenants."""

from __future__ import annotations

import ipaddress
from typing import Any

from portal.lib.dns import reverse_label

DNSBL_ZONE = "zen.demo"
DBL_ZONE = "dbl.demo"


def _ptr(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer


def demo_zone() -> dict[str, Any]:
    zone: dict[str, Any] = {
        "acme.example": {"TXT": ["v=spf1 ip4:203.0.113.0/26 -all"], "MX": ["10 mail.acme.example."]},
        "_dmarc.acme.example": {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@acme.example"]},
        "shop.acme.example": {"TXT": ["v=spf1 include:acme.example -all"]},
        "mail.acme.example": {"A": ["203.0.113.25"]},
        _ptr("203.0.113.25"): {"PTR": ["mail.acme.example."]},
        _ptr("203.0.113.50"): {"PTR": ["203-0-113-50.dynamic.acme-isp.example."]},
        "203-0-113-50.dynamic.acme-isp.example": {"A": ["203.0.113.50"]},
        f"{reverse_label('203.0.113.40')}.{DNSBL_ZONE}": {"A": ["127.0.0.3"]},
        f"{reverse_label('203.0.113.41')}.{DNSBL_ZONE}": {"A": ["127.0.0.10"]},
        "globex.example": {"TXT": ["v=spf1 ip4:198.51.100.64/27 ~all"]},
        "_dmarc.globex.example": {"TXT": ["v=DMARC1; p=none"]},
        f"spammy.example.{DBL_ZONE}": {"A": ["127.0.1.2"]},
    }
    for n in range(32, 40):
        host = f"shop{n - 31}.acme.example"
        zone[_ptr(f"203.0.113.{n}")] = {"PTR": [f"{host}."]}
        zone[host] = {"A": [f"203.0.113.{n}"]}
    return zone
