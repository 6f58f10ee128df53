"""Reviewers' decisions and queue actions. Each one is a durable transaction that locks the
request first, so that of two people deciding at once exactly one decision stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.enforcement.models import Exemption
from portal.review.models import Approval
from portal.review.policy import (
    DecisionRefused,
    ensure_may_act,
    ensure_may_be_assigned,
    four_eyes_reasons,
    is_approver,
)
from portal.unblock import actions
from portal.unblock.models import IllegalTransition, MessageKind, State, UnblockRequest


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
                actions.change_state(req, "start_review", actor=actor)
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
        exemptions = actions.approve_in_transaction(
            req, actor=actor, cidrs=cidrs, expires_at=expires_at, note=note
        )
        return ApprovalOutcome(True, exemptions)


def deny(*, req: UnblockRequest, user: User, reason: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        actions.change_state(req, "deny", actor=Actor(user=user), reason=reason)
        return req


def request_info(*, req: UnblockRequest, user: User, question: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        actor = Actor(user=user)
        actions.change_state(req, "ask_for_info", actor=actor, reason=question)
        actions.add_message(req, actor=actor, kind=MessageKind.QUESTION, body=question)
        return req


def add_note(*, req: UnblockRequest, user: User, text: str) -> None:
    with transaction.atomic(durable=True):
        req = _lock(req)
        ensure_may_act(user, req)
        actions.add_message(req, actor=Actor(user=user), kind=MessageKind.NOTE, body=text, internal=True)


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
            actions.change_state(req, "start_review", actor=actor)
        record(
            actor=actor,
            action="review.assigned" if assignee else "review.released",
            obj=req,
            tenant_id=req.tenant_id,
            before={"assignee": before},
            after={"assignee": assignee.email if assignee else None},
        )
        return req
