"""Every change to an exemption: granting, renewing, suspending, reinstating, revoking,
expiring, and the customer's request for reinstatement.

This module is the only writer of Exemption rows and of their `exemption.*` audit events. Each
step writes the row, the audit event, the change-feed row and the webhook deliveries together:
in the caller's transaction (the plain functions) or in its own (the durable ones).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import STAFF_ROLES, Actor
from portal.audit.log import record
from portal.enforcement.changes import publish
from portal.enforcement.models import ChangeOp, Exemption, ExemptionState
from portal.enforcement.suspension import reason_to_suspend
from portal.lib.ipblocks import Network
from portal.notifications.outbox import queue_email
from portal.reputation.models import ReputationEvent
from portal.unblock.models import OPEN_STATES, State, UnblockRequest

ACTIVE, SUSPENDED = ExemptionState.ACTIVE, ExemptionState.SUSPENDED

# event -> (states it may start from, state it leads to, change-feed operation)
MOVES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "exemption.suspended": ((ACTIVE,), SUSPENDED, ChangeOp.REMOVE),
    "exemption.reinstated": ((SUSPENDED,), ACTIVE, ChangeOp.ADD),
    "exemption.revoked": ((ACTIVE, SUSPENDED), ExemptionState.REVOKED, ChangeOp.REMOVE),
    "exemption.expired": ((ACTIVE, SUSPENDED), ExemptionState.EXPIRED, ChangeOp.REMOVE),
}


class ExemptionConflict(Exception):
    """The exemption is not in a state from which this change is possible."""


def grant(*, req: UnblockRequest, network: Network, expires_at: datetime | None, actor: Actor) -> Exemption:
    """Create the active exemption an approval grants, in the approval's transaction."""
    exemption = Exemption(tenant=req.tenant, request=req, expires_at=expires_at)
    exemption.set_network(network)
    exemption.save()
    publish(exemption, event="exemption.activated", op=ChangeOp.ADD)
    record(
        actor=actor,
        action="exemption.activated",
        obj=exemption,
        tenant_id=req.tenant_id,
        after={"cidr": exemption.cidr, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return exemption


def extend(exemption: Exemption, *, expires_at: datetime | None, actor: Actor) -> None:
    """Give an exemption in force the expiry its approved renewal chose, in that transaction.

    Consumers that track expiry (exemptions.json, webhooks) see the new date: an active
    exemption is re-added (idempotent for set consumers), a suspended one is not.
    """
    before = exemption.expires_at
    Exemption.objects.filter(pk=exemption.pk).update(expires_at=expires_at)
    exemption.expires_at = expires_at
    op = ChangeOp.ADD if exemption.state == ExemptionState.ACTIVE else ChangeOp.REMOVE
    publish(exemption, event="exemption.renewed", op=op)
    record(
        actor=actor,
        action="exemption.renewed",
        obj=exemption,
        tenant_id=exemption.tenant_id,
        before={"expires_at": before.isoformat() if before else None},
        after={"expires_at": expires_at.isoformat() if expires_at else None},
    )


def move(exemption: Exemption, event: str, *, actor: Actor, reason: str = "") -> bool:
    """Apply `event` if the exemption is in a state it applies to; False if it was not."""
    sources, target, op = MOVES[event]
    before = exemption.state
    now = timezone.now()
    rows = Exemption.objects.filter(pk=exemption.pk, state__in=sources)
    if event == "exemption.expired":
        # Re-checked in the UPDATE: a renewal committed since the job listed the row wins.
        rows = rows.filter(expires_at__lte=now)
    changed = rows.update(state=target, state_changed_at=now, state_reason=reason)
    if not changed:
        return False
    exemption.state = target
    exemption.state_reason = reason
    publish(exemption, event=event, op=op)
    record(
        actor=actor,
        action=event,
        obj=exemption,
        tenant_id=exemption.tenant_id,
        before={"state": before},
        after={"state": target},
        reason=reason,
    )
    if event in ("exemption.suspended", "exemption.revoked", "exemption.reinstated"):
        _tell_people(exemption, event, reason)
    return True


def _tell_people(exemption: Exemption, event: str, reason: str) -> None:
    members = [m.user.email for m in exemption.tenant.memberships.select_related("user")]
    queue_email(
        to=[*members, exemption.tenant.abuse_contact],
        template="emails/exemption_changed.txt",
        context={"exemption": exemption, "event": event.split(".")[1], "reason": reason},
    )
    if event == "exemption.suspended":
        staff = User.objects.filter(groups__name__in=STAFF_ROLES, is_active=True).values_list(
            "email", flat=True
        )
        queue_email(
            to=list(staff),
            template="emails/exemption_suspended_staff.txt",
            context={"exemption": exemption, "reason": reason},
        )


def change(exemption: Exemption, event: str, *, actor: Actor, reason: str = "") -> Exemption:
    """The durable version for people and API calls; raises ExemptionConflict if not applicable."""
    with transaction.atomic(durable=True):
        # Only the exemption's row: locking the tenant's too would deadlock with a transaction
        # that holds the feed lock and inserts rows referring to the tenant (audit, exemptions).
        locked = (
            Exemption.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=exemption.pk)
        )
        if not move(locked, event, actor=actor, reason=reason):
            verb = event.split(".")[1]
            raise ExemptionConflict(f"An exemption that is {locked.state} can't be {verb}.")
        return locked


def suspend_for(event: ReputationEvent) -> list[Exemption]:
    """Suspend the active exemptions covering the event's address if the policy says so.

    Call inside the transaction that saved the event, so that the suspension webhook is on its
    way as soon as the signal is stored.
    """
    if not event.cidr:
        return []
    reason = reason_to_suspend(event)
    if not reason:
        return []
    actor = Actor.of_system("suspension policy")
    suspended = []
    for exemption in Exemption.objects.active().overlapping(event.network).select_related("tenant"):
        if move(exemption, "exemption.suspended", actor=actor, reason=reason):
            suspended.append(exemption)
    return suspended


def open_renewal(exemption: Exemption) -> UnblockRequest | None:
    return exemption.renewals.filter(state__in=(State.DRAFT, *OPEN_STATES)).first()


def ask_reinstatement(*, exemption: Exemption, actor: Actor, note: str) -> None:
    """The customer explains a suspension's cause and fix; staff are told."""
    with transaction.atomic(durable=True):
        changed = Exemption.objects.filter(pk=exemption.pk, state=ExemptionState.SUSPENDED).update(
            reinstatement_asked_at=timezone.now(), reinstatement_note=note
        )
        if not changed:
            raise ExemptionConflict("Only a suspended exemption can be reinstated.")
        record(
            actor=actor,
            action="exemption.reinstatement_asked",
            obj=exemption,
            tenant_id=exemption.tenant_id,
            reason=note,
        )
        staff = User.objects.filter(groups__name__in=STAFF_ROLES, is_active=True).values_list(
            "email", flat=True
        )
        queue_email(
            to=list(staff),
            template="emails/reinstatement_asked.txt",
            context={"exemption": exemption, "note": note, "actor": actor.label},
        )
