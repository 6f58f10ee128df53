"""Customers' steps on their unblock requests: drafting, submitting, re-running the checks,
withdrawing, answering a question, and drafting a renewal.

Each step is one durable transaction that changes the request, writes its audit event, queues
the vetting run and the emails it causes, so that none of them can exist without the others.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Actor, Tenant
from portal.audit.log import record
from portal.enforcement.grantable import clean_addresses
from portal.enforcement.models import Exemption
from portal.review.policy import ensure_may_act
from portal.unblock.models import IllegalTransition, MessageKind, RequestedBlock, UnblockRequest
from portal.unblock.rules import RequestData, missing_for_submit
from portal.unblock.transitions import add_message, change_state
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
    if by_staff and actor.user is not None:
        # A re-run is a staff action like any decision: it can turn a denial into a fresh route.
        ensure_may_act(actor.user, req)
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


def _snapshot(req: UnblockRequest) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(req, name) for name in EDITABLE_FIELDS}
    values["addresses"] = [b.cidr for b in req.blocks.all()] if req.pk else []
    values["aup_accepted"] = req.aup_accepted_at is not None
    return values


def draft_renewal(*, exemption: Exemption, actor: Actor) -> UnblockRequest:
    """A renewal draft for an exemption in force, pre-filled from the request that granted it."""
    original = exemption.request
    data = RequestData(addresses=[exemption.cidr])
    if original is not None:
        data = RequestData(
            addresses=[exemption.cidr],
            **{name: getattr(original, name) for name in EDITABLE_FIELDS},
        )
        data.sending_domains = list(data.sending_domains)
    return save_request(tenant=exemption.tenant, actor=actor, data=data, submit=False, renewal_of=exemption)
