"""Who may decide what: roles, separation of duties and the four-eyes rule."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from portal.accounts.models import Membership, Tenant, roles_of
from portal.unblock.models import UnblockRequest


class DecisionRefused(Exception):
    """The person may not take this decision; the message says why and who can."""


def four_eyes_reasons(req: UnblockRequest) -> list[str]:
    reasons = []
    if req.vetted_at is None:
        # Without the checks nobody knows the risk (or a hard failure such as a listing).
        reasons.append("the automated checks have not finished")
    if req.risk_band and req.risk_band in settings.FOUR_EYES_RISK_BANDS:
        reasons.append(f"the risk band is {req.risk_band}")
    if settings.FOUR_EYES_FOR_BLOCKS and any(b.network.num_addresses > 1 for b in req.blocks.all()):
        reasons.append("it covers a block larger than one address")
    age = (timezone.localdate() - req.tenant.account_opened_on).days
    if age < settings.FOUR_EYES_TENANT_MIN_AGE_DAYS:
        reasons.append(f"the account is {age} days old (under {settings.FOUR_EYES_TENANT_MIN_AGE_DAYS})")
    return reasons


def ensure_may_act(user: User, req: UnblockRequest) -> None:
    ensure_may_act_for(user, req.tenant, what="requests")


def ensure_may_act_for(user: User, tenant: Tenant, *, what: str = "exemptions") -> None:
    """Separation of duties: staff never decide on their own tenant's requests or exemptions."""
    if not roles_of(user):
        raise DecisionRefused(f"Only reviewers, approvers and admins can act on {what}.")
    if Membership.objects.filter(user=user, tenant_id=tenant.pk).exists():
        raise DecisionRefused(
            f"You are a member of {tenant.name}, so you can't act on its {what}; "
            "another reviewer must take it."
        )


def ensure_may_be_assigned(assignee: User, req: UnblockRequest) -> None:
    if not roles_of(assignee):
        raise DecisionRefused(f"{assignee.email} is not a reviewer, approver or admin.")
    if Membership.objects.filter(user=assignee, tenant_id=req.tenant_id).exists():
        raise DecisionRefused(
            f"{assignee.email} is a member of {req.tenant.name}, so they can't act on its requests; "
            "assign another reviewer."
        )


def is_approver(user: User) -> bool:
    return bool(roles_of(user) & {"approver", "admin"})
