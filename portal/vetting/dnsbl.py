"""DNS blocklist look-ups and what their return codes mean (see shared/DOMAIN.md, section 2)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings

from portal.lib.dns import Lookup, Resolver, reverse_label
from portal.vetting.findings import ERROR, FAIL, INFO, PASS, Finding


@dataclass(frozen=True)
class Code:
    name: str
    meaning: str
    abuse: bool


ZEN_CODES = {
    "127.0.0.2": Code("SBL", "Spamhaus SBL: a known spam source or spam operation", True),
    "127.0.0.3": Code(
        "CSS", "Spamhaus CSS: low-reputation sender (expires ~3 days after the last detection)", True
    ),
    "127.0.0.4": Code("XBL", "Spamhaus XBL: exploited or infected host", True),
    "127.0.0.5": Code("XBL", "Spamhaus XBL (historic code): exploited host", True),
    "127.0.0.6": Code("XBL", "Spamhaus XBL (historic code): exploited host", True),
    "127.0.0.7": Code("XBL", "Spamhaus XBL (historic code): exploited host", True),
    "127.0.0.9": Code("DROP", "Spamhaus DROP: hijacked or criminal netblock", True),
    "127.0.0.10": Code("PBL", "Spamhaus PBL (ISP-maintained): policy, should not send direct-to-MX", False),
    "127.0.0.11": Code(
        "PBL", "Spamhaus PBL (Spamhaus-maintained): policy, should not send direct-to-MX", False
    ),
    "127.0.0.30": Code("BCL", "Spamhaus BCL: botnet controller", True),
}

DBL_CODES = {
    "127.0.1.2": Code("DBL", "Spamhaus DBL: low-reputation domain", True),
    "127.0.1.4": Code("DBL", "Spamhaus DBL: phishing domain", True),
    "127.0.1.5": Code("DBL", "Spamhaus DBL: malware domain", True),
    "127.0.1.6": Code("DBL", "Spamhaus DBL: botnet command-and-control domain", True),
    **{f"127.0.1.{n}": Code("DBL", "Spamhaus DBL: abused legitimate domain", True) for n in range(102, 107)},
}

ERROR_CODES = {
    "127.255.255.250": "the DQS key is disabled; check SPAMHAUS_DQS_KEY",
    "127.255.255.251": "the DQS key was rejected; check SPAMHAUS_DQS_KEY",
    "127.255.255.252": "the zone name is wrong (typo); check DNSBL_ZONES",
    "127.255.255.254": "the query came through a public/open resolver, which Spamhaus refuses; "
    "point DNS_NAMESERVERS at your own recursive resolver or use a DQS key",
    "127.255.255.255": "too many queries (rate limited); use a DQS key or your own mirror",
    "127.0.1.255": "an IP address was sent to the domain blocklist",
}
_ERROR_NET = ipaddress.ip_network("127.255.255.0/24")


def ip_zones() -> list[str]:
    key = settings.SPAMHAUS_DQS_KEY
    zones = [f"{key}.zen.dq.spamhaus.net" if key else settings.DNSBL_ZONE]
    return zones + [z for z in settings.DNSBL_EXTRA_ZONES if z not in zones]


def domain_zone() -> str:
    key = settings.SPAMHAUS_DQS_KEY
    return f"{key}.dbl.dq.spamhaus.net" if key else settings.DBL_ZONE


def display_zone(zone: str) -> str:
    """The zone without the DQS key, which must never appear in evidence or pages."""
    key = settings.SPAMHAUS_DQS_KEY
    return zone.replace(f"{key}.", "<key>.") if key else zone


def codes_for(zone: str) -> dict[str, Code]:
    return ZEN_CODES if "zen" in zone.split(".") else {}


def listing_error(answers: tuple[str, ...]) -> str:
    for answer in answers:
        if answer in ERROR_CODES:
            return f"{answer}: {ERROR_CODES[answer]}"
        try:
            if ipaddress.ip_address(answer) in _ERROR_NET:
                return f"{answer}: the blocklist answered with an error code"
        except ValueError:
            return f"{answer}: not an address; the zone is misconfigured"
    return ""


def check_address(resolver: Resolver, address: str, zone: str) -> Finding:
    lookup = resolver.query(f"{reverse_label(address)}.{zone}", "A")
    shown = display_zone(zone)
    evidence = _evidence(lookup, zone)
    if lookup.status == "error":
        return Finding(
            "dnsbl",
            address,
            ERROR,
            f"{shown}: no usable answer ({_scrub(lookup.error)}); listing status unknown",
            evidence=evidence,
            score=5,
        )
    if lookup.negative:
        return Finding("dnsbl", address, PASS, f"Not listed on {shown}", evidence=evidence)
    if problem := listing_error(lookup.answers):
        return Finding(
            "dnsbl", address, ERROR, f"{shown}: {problem}; listing status unknown", evidence=evidence, score=5
        )
    known = codes_for(zone)
    listed = [(a, known.get(a, Code("listed", f"listed on {shown}", True))) for a in lookup.answers]
    evidence["codes"] = [
        {"code": a, "list": c.name, "meaning": c.meaning, "abuse": c.abuse} for a, c in listed
    ]
    abuse = [c for _, c in listed if c.abuse]
    if abuse:
        names = sorted({c.name for c in abuse})
        return Finding(
            "dnsbl",
            address,
            FAIL,
            f"Listed on {', '.join(names)} ({shown}): " + "; ".join(c.meaning for c in abuse),
            fix=f"{address} is on a Spamhaus blocklist ({', '.join(names)}). Find and stop the source of "
            f"the abuse, then request removal at https://check.spamhaus.org/results/?query={address} "
            "and re-run the checks.",
            evidence=evidence,
            score=100,
            hard=True,
        )
    return Finding(
        "dnsbl",
        address,
        INFO,
        f"On the PBL ({shown}): a policy listing for ranges that should not send direct-to-MX, not abuse",
        evidence=evidence,
    )


def check_domain(resolver: Resolver, domain: str) -> Finding:
    zone = domain_zone()
    lookup = resolver.query(f"{domain}.{zone}", "A")
    shown = display_zone(zone)
    evidence = _evidence(lookup, zone)
    if lookup.status == "error":
        return Finding(
            "dbl",
            domain,
            ERROR,
            f"{shown}: no usable answer ({_scrub(lookup.error)})",
            evidence=evidence,
            score=5,
        )
    if lookup.negative:
        return Finding("dbl", domain, PASS, f"Not listed on {shown}", evidence=evidence)
    if problem := listing_error(lookup.answers):
        return Finding("dbl", domain, ERROR, f"{shown}: {problem}", evidence=evidence, score=5)
    meanings = [DBL_CODES.get(a, Code("DBL", "listed", True)).meaning for a in lookup.answers]
    evidence["codes"] = [{"code": a, "meaning": m} for a, m in zip(lookup.answers, meanings, strict=True)]
    return Finding(
        "dbl",
        domain,
        FAIL,
        f"{domain} is on the domain blocklist: " + "; ".join(meanings),
        fix=f"{domain} is on the Spamhaus Domain Blocklist. Clean up the domain and request removal at "
        f"https://check.spamhaus.org/results/?query={domain} before sending from it.",
        evidence=evidence,
        score=40,
    )


def _evidence(lookup: Lookup, zone: str) -> dict[str, object]:
    evidence = {
        key: _scrub(value) if isinstance(value, str) else value for key, value in lookup.as_evidence().items()
    }
    evidence["zone"] = display_zone(zone)
    return evidence


def _scrub(text: str) -> str:
    key = settings.SPAMHAUS_DQS_KEY
    return text.replace(key, "<key>") if key else text
