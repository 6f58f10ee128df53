"""Decisions on unblock requests: approving (which grants exemptions), denying, asking for
information, and the reviewers' queue actions.

Each reviewer step is a durable transaction that locks the request first, so that of two people
deciding at once exactly one decision stands. `approve_in_transaction` and `deny_in_transaction`
are also used by automated vetting inside the transaction that stores its checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.enforcement.grantable import ensure_still_grantable
from portal.enforcement.models import Exemption
from portal.review.models import Approval
from portal.review.policy import (
    DecisionRefused,
    ensure_may_act,
    ensure_may_be_assigned,
    four_eyes_reasons,
    is_approver,
)
from portal.unblock.models import IllegalTransition, MessageKind, State, UnblockRequest
from portal.unblock.transitions import add_message, change_state
from portal.workflows import exemptions


@dataclass
class ApprovalOutcome:
    final: bool
    exemptions: list[Exemption]
    waiting_for: str = ""


def _lock(req: UnblockRequest) -> UnblockRequest:
    # Lock the request row only: the tenant is read, not changed, and locking it too would make
    # every decision wait for the tenant's other requests and for customers filing new ones.
    return UnblockRequest.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=req.pk)


def approve(
    *, req: UnblockRequest, user: User, cidrs: list[str] | None, expires_at: datetime | None, note: str
) -> ApprovalOutcome:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        if not req.can("approve"):
            raise IllegalTransition("approve", req.state)
        if expires_at is None and not is_approver(user):
            raise DecisionRefused(
                "Only approvers can grant an exemption with no expiry; choose an expiry date."
            )
        actor = Actor(user=user)
        reasons = four_eyes_reasons(req)
        first = req.approvals.filter(final=False).select_related("approver").first()
        if reasons and first is None:
            cidrs = cidrs or [b.cidr for b in req.blocks.all()]
            Approval.objects.create(request=req, approver=user, cidrs=cidrs, expires_at=expires_at, note=note)
            if req.state == State.SUBMITTED:
                change_state(req, "start_review", actor=actor)
            record(
                actor=actor,
                action="review.first_approval",
                obj=req,
                tenant_id=req.tenant_id,
                after={"cidrs": cidrs, "expires_at": expires_at.isoformat() if expires_at else None},
                reason=f"Four-eyes: {'; '.join(reasons)}. {note}".strip(),
            )
            return ApprovalOutcome(False, [], waiting_for="a second approval by another approver")
        if first is not None:
            if first.approver_id == user.pk:
                raise DecisionRefused(
                    "You gave the first approval; the final approval must come from another person."
                )
            if not is_approver(user):
                raise DecisionRefused(
                    "The final approval of this request needs someone with the approver role."
                )
            # Every approved address needs both pairs of eyes: the final approval confirms the
            # first one's addresses (or fewer), never more.
            cidrs = cidrs or list(first.cidrs)
            if extra := [c for c in cidrs if c not in first.cidrs]:
                raise DecisionRefused(
                    f"The first approval covers only {', '.join(first.cidrs)}; {', '.join(extra)} "
                    "would have a single approval. Approve those addresses or fewer."
                )
        Approval.objects.create(
            request=req,
            approver=user,
            cidrs=cidrs or [b.cidr for b in req.blocks.all()],
            expires_at=expires_at,
            note=note,
            final=True,
        )
        granted = approve_in_transaction(req, actor=actor, cidrs=cidrs, expires_at=expires_at, note=note)
        return ApprovalOutcome(True, granted)


def deny(*, req: UnblockRequest, user: User, reason: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        change_state(req, "deny", actor=Actor(user=user), reason=reason)
        return req


def request_info(*, req: UnblockRequest, user: User, question: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        actor = Actor(user=user)
        change_state(req, "ask_for_info", actor=actor, reason=question)
        add_message(req, actor=actor, kind=MessageKind.QUESTION, body=question)
        return req


def add_note(*, req: UnblockRequest, user: User, text: str) -> None:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        add_message(req, actor=Actor(user=user), kind=MessageKind.NOTE, body=text, internal=True)


def assign(*, req: UnblockRequest, user: User, assignee: User | None) -> UnblockRequest:
    """Claim (assignee is the user), assign to someone else, or release (assignee None)."""
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        if assignee is not None:
            ensure_may_be_assigned(assignee, req)
        if not req.is_open:
            raise IllegalTransition("assign", req.state)
        before = req.assignee.email if req.assignee else None
        UnblockRequest.objects.filter(pk=req.pk).update(assignee=assignee)
        req.assignee = assignee
        actor = Actor(user=user)
        if assignee is not None and req.state == State.SUBMITTED:
            change_state(req, "start_review", actor=actor)
        record(
            actor=actor,
            action="review.assigned" if assignee else "review.released",
            obj=req,
            tenant_id=req.tenant_id,
            before={"assignee": before},
            after={"assignee": assignee.email if assignee else None},
        )
        return req


def approve_request(
    *,
    req: UnblockRequest,
    actor: Actor,
    cidrs: list[str] | None = None,
    expires_at: datetime | Literal["default"] | None = "default",
    note: str = "",
) -> list[Exemption]:
    """Approve and create one exemption per approved block, in one transaction with the audit."""
    with transaction.atomic(durable=True):
        return approve_in_transaction(req, actor=actor, cidrs=cidrs, expires_at=expires_at, note=note)


def approve_in_transaction(
    req: UnblockRequest,
    *,
    actor: Actor,
    cidrs: list[str] | None,
    expires_at: datetime | Literal["default"] | None,
    note: str,
) -> list[Exemption]:
    blocks = list(req.blocks.all())
    chosen = [b for b in blocks if cidrs is None or b.cidr in cidrs]
    if not chosen:
        raise ValidationError("Choose at least one of the request's addresses to approve.")
    # Allocations and exemptions may have changed since the request was filed: an address the
    # tenant no longer holds, or one that another exemption covers, must not be exempted.
    renewed = (
        Exemption.objects.select_for_update(of=("self",)).filter(pk=req.renewal_of_id).first()
        if req.renewal_of_id
        else None
    )
    ensure_still_grantable([b.network for b in chosen], req=req)
    change_state(req, "approve", actor=actor, reason=note)
    if expires_at == "default":
        expires_at = timezone.now() + timedelta(days=settings.EXEMPTION_DEFAULT_DAYS)
    if renewed is not None and renewed.state in ("active", "suspended"):
        # A renewal extends the exemption it renews instead of adding an overlapping one.
        exemptions.extend(renewed, expires_at=expires_at, actor=actor)
        chosen = [b for b in chosen if b.cidr != renewed.cidr]
    return [
        exemptions.grant(req=req, network=block.network, expires_at=expires_at, actor=actor)
        for block in chosen
    ]


def deny_in_transaction(req: UnblockRequest, *, actor: Actor, reason: str) -> None:
    change_state(req, "deny", actor=actor, reason=reason)


def deny_request(*, req: UnblockRequest, actor: Actor, reason: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        deny_in_transaction(req, actor=actor, reason=reason)
        return req
