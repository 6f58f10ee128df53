"""The risk policy: findings in, a score with a readable breakdown and a route out."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from portal.accounts.models import Tenant
from portal.vetting.findings import FAIL, INFO, PASS, Finding
from portal.vetting.models import RiskBand, Route


@dataclass
class Assessment:
    score: int
    band: str
    route: str
    breakdown: list[dict[str, object]] = field(default_factory=list)
    customer_reason: str = ""


def blocked_attempt_points(last_day: int, last_week: int) -> int:
    """Points for port-25 attempts the firewall blocked from an address before its request.

    Attempts in the last day are the strongest hint: a host that was trying to send until the
    moment its owner asked to be let out is most often a compromised one.
    """
    per_hour = settings.TELEMETRY_BLOCKED_PER_HOUR
    if last_day > per_hour:
        return 30
    if last_day:
        return 15
    if last_week > per_hour:
        return 10
    return 5 if last_week else 0


def band_for(score: int) -> str:
    if score >= settings.RISK_BAND_HIGH:
        return RiskBand.HIGH
    if score >= settings.RISK_BAND_MEDIUM:
        return RiskBand.MEDIUM
    return RiskBand.LOW


def assess(findings: list[Finding], tenant: Tenant) -> Assessment:
    breakdown = [
        {"points": f.score, "text": _line(f), "check": f.check, "subject": f.subject}
        for f in sorted(findings, key=lambda f: -f.score)
        if f.score
    ]
    score = sum(f.score for f in findings)
    band = band_for(score)
    hard = [f for f in findings if f.hard]
    if hard and settings.AUTO_DENY_ENABLED:
        reasons = [f.fix or f.summary for f in hard]
        reason = "This request was declined automatically:\n" + "\n".join(
            f"- {r}" for r in dict.fromkeys(reasons)
        )
        return Assessment(
            score, band, Route.AUTO_DENY, breakdown, reason + "\nFix this, then file a new request."
        )
    if settings.AUTO_APPROVE_ENABLED and _qualifies_for_auto_approval(findings, tenant):
        return Assessment(score, band, Route.AUTO_APPROVE, breakdown)
    return Assessment(score, band, Route.REVIEW, breakdown)


def _qualifies_for_auto_approval(findings: list[Finding], tenant: Tenant) -> bool:
    age = (timezone.localdate() - tenant.account_opened_on).days
    return (
        all(f.outcome in (PASS, INFO) for f in findings)
        and age >= settings.AUTO_APPROVE_MIN_ACCOUNT_AGE_DAYS
        and tenant.paid_invoices >= settings.AUTO_APPROVE_MIN_PAID_INVOICES
        and tenant.identity_verified
    )


def _line(finding: Finding) -> str:
    text = f"+{finding.score} {finding.summary}"
    if (
        finding.outcome == FAIL
        and finding.check == "dnsbl"
        and (since := finding.evidence.get("listed_since"))
    ):
        text += f" since {str(since)[:10]}"
    if finding.check not in (
        "account_age",
        "paid_invoices",
        "identity",
        "billing_standing",
        "tenant_history",
    ):
        text += f" ({finding.subject})" if finding.subject not in finding.summary else ""
    return text
