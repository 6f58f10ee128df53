"""Workflow steps for unblock requests.

Each step is one durable transaction that changes the request, writes its audit event and
queues the emails it causes, so that none of them can exist without the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor, Tenant
from portal.audit.log import record
from portal.enforcement import actions as exemption_actions
from portal.enforcement.models import Exemption
from portal.notifications.outbox import queue_email
from portal.unblock.models import IllegalTransition, Message, MessageKind, RequestedBlock, UnblockRequest
from portal.unblock.rules import RequestData, clean_addresses, ensure_still_grantable, missing_for_submit
from portal.vetting.jobs import queue_vetting
from portal.vetting.models import RunReason

EDITABLE_FIELDS = (
    "use_case",
    "justification",
    "mail_software",
    "sending_domains",
    "expected_daily_volume",
    "bounce_handling",
    "abuse_contact",
)


def save_request(
    *,
    tenant: Tenant,
    actor: Actor,
    data: RequestData,
    submit: bool,
    editing: UnblockRequest | None = None,
    renewal_of: Exemption | None = None,
) -> UnblockRequest:
    """Create a request (or update a draft) from already-cleaned data, and submit it if asked.

    Address rules are checked again under a lock on the tenant, so two submissions racing with
    the same address can't both get through.
    """
    with transaction.atomic(durable=True):
        Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk).first()
        if editing is not None:
            editing = UnblockRequest.objects.select_for_update(of=("self",)).get(pk=editing.pk)
            if not editing.is_editable:
                raise IllegalTransition("edit", editing.state)
        renewing = renewal_of.pk if renewal_of is not None else None
        networks = clean_addresses(data.addresses, tenant=tenant, editing=editing, renewing=renewing)
        if submit and (missing := missing_for_submit(data)):
            raise ValidationError(missing)

        req = editing or UnblockRequest(tenant=tenant, created_by=actor.user, renewal_of=renewal_of)
        before = _snapshot(req) if editing else {}
        for name in EDITABLE_FIELDS:
            setattr(req, name, getattr(data, name))
        req.aup_accepted_at = timezone.now() if data.accept_aup else None
        req.save()
        req.blocks.all().delete()
        for network in networks:
            block = RequestedBlock(request=req)
            block.set_network(network)
            block.save()
        after = _snapshot(req)
        record(
            actor=actor,
            action="request.draft_saved" if editing else "request.created",
            obj=req,
            tenant_id=tenant.pk,
            before=before,
            after=after,
        )
        if submit:
            change_state(req, "submit", actor=actor)
            queue_vetting(req, reason=RunReason.SUBMITTED, requested_by=actor.label)
        return req


def submit_request(*, req: UnblockRequest, actor: Actor) -> UnblockRequest:
    with transaction.atomic(durable=True):
        req = UnblockRequest.objects.select_for_update(of=("self",)).get(pk=req.pk)
        data = RequestData(
            addresses=[b.cidr for b in req.blocks.all()],
            accept_aup=req.aup_accepted_at is not None,
            **{name: getattr(req, name) for name in EDITABLE_FIELDS},
        )
        Tenant.objects.select_for_update(no_key=True).filter(pk=req.tenant_id).first()
        clean_addresses(data.addresses, tenant=req.tenant, editing=req)
        if missing := missing_for_submit(data):
            raise ValidationError(
                "This draft is incomplete: " + " ".join(missing.values()) + " Edit the draft to add it."
            )
        change_state(req, "submit", actor=actor)
        queue_vetting(req, reason=RunReason.SUBMITTED, requested_by=actor.label)
        return req


def recheck_request(*, req: UnblockRequest, actor: Actor, by_staff: bool) -> UnblockRequest:
    with transaction.atomic(durable=True):
        reason = RunReason.STAFF_RECHECK if by_staff else RunReason.CUSTOMER_RECHECK
        queue_vetting(req, reason=reason, requested_by=actor.label)
        record(actor=actor, action="request.recheck", obj=req, tenant_id=req.tenant_id)
        return req


def withdraw_request(*, req: UnblockRequest, actor: Actor, reason: str = "") -> UnblockRequest:
    with transaction.atomic(durable=True):
        change_state(req, "withdraw", actor=actor, reason=reason)
        return req


def start_review(*, req: UnblockRequest, actor: Actor) -> UnblockRequest:
    with transaction.atomic(durable=True):
        change_state(req, "start_review", actor=actor)
        return req


def ask_for_info(*, req: UnblockRequest, actor: Actor, question: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        change_state(req, "ask_for_info", actor=actor, reason=question)
        add_message(req, actor=actor, kind=MessageKind.QUESTION, body=question)
        return req


def answer_request(*, req: UnblockRequest, actor: Actor, answer: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        change_state(req, "answer", actor=actor)
        add_message(req, actor=actor, kind=MessageKind.ANSWER, body=answer)
        return req


def add_message(
    req: UnblockRequest, *, actor: Actor, kind: str, body: str, internal: bool = False
) -> Message:
    message = Message.objects.create(
        request=req, author=actor.user, author_label=actor.label, kind=kind, body=body, internal=internal
    )
    record(actor=actor, action=f"message.{kind}", obj=req, tenant_id=req.tenant_id, after={"body": body})
    return message


def change_state(req: UnblockRequest, action: str, *, actor: Actor, reason: str = "") -> None:
    before, after = req.transition(action)
    record(
        actor=actor,
        action=f"request.{action}",
        obj=req,
        tenant_id=req.tenant_id,
        before={"state": before},
        after={"state": after},
        reason=reason,
    )
    members = req.tenant.memberships.select_related("user").filter(user__is_active=True)
    queue_email(
        to=[m.user.email for m in members],
        template="emails/request_state_changed.txt",
        context={"req": req, "actor": actor.label, "reason": reason},
    )


def _snapshot(req: UnblockRequest) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(req, name) for name in EDITABLE_FIELDS}
    values["addresses"] = [b.cidr for b in req.blocks.all()] if req.pk else []
    values["aup_accepted"] = req.aup_accepted_at is not None
    return values


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
        before = renewed.expires_at
        Exemption.objects.filter(pk=renewed.pk).update(expires_at=expires_at)
        renewed.expires_at = expires_at
        exemption_actions.renewed(renewed, actor=actor)
        record(
            actor=actor,
            action="exemption.renewed",
            obj=renewed,
            tenant_id=req.tenant_id,
            before={"expires_at": before.isoformat() if before else None},
            after={"expires_at": expires_at.isoformat() if expires_at else None},
        )
        chosen = [b for b in chosen if b.cidr != renewed.cidr]
    exemptions = []
    for block in chosen:
        exemption = Exemption(tenant=req.tenant, request=req, expires_at=expires_at)
        exemption.set_network(block.network)
        exemption.save()
        exemption_actions.activated(exemption, actor=actor)
        record(
            actor=actor,
            action="exemption.activated",
            obj=exemption,
            tenant_id=req.tenant_id,
            after={"cidr": exemption.cidr, "expires_at": expires_at.isoformat() if expires_at else None},
        )
        exemptions.append(exemption)
    return exemptions


def deny_request(*, req: UnblockRequest, actor: Actor, reason: str) -> UnblockRequest:
    with transaction.atomic(durable=True):
        change_state(req, "deny", actor=actor, reason=reason)
        return req
