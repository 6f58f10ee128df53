"""What one check found about one subject, before it is stored as a CheckResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, INFO, WARN, FAIL, ERROR = "pass", "info", "warn", "fail", "error"
OUTCOME_ORDER = {PASS: 0, INFO: 1, WARN: 2, ERROR: 3, FAIL: 4}

CHECK_TITLES = {
    "account_age": "Account age",
    "paid_invoices": "Paid invoices",
    "identity": "Identity verification",
    "billing_standing": "Billing standing",
    "ownership": "Address ownership",
    "rdns": "Reverse DNS",
    "dnsbl": "Blocklists",
    "spf": "SPF",
    "dmarc": "DMARC",
    "dbl": "Domain blocklist",
    "tenant_history": "Account history",
    "address_history": "Address history",
    "blocked_attempts": "Blocked port-25 attempts",
}


@dataclass
class Finding:
    check: str
    subject: str
    outcome: str
    summary: str
    # What the customer should do about it; empty when there is nothing to do.
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    # Points this finding adds to the risk score, and whether it alone denies the request.
    score: int = 0
    hard: bool = False
    staff_only: bool = False
