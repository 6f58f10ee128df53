"""State changes of exemptions. Each writes the audit event, the change-feed row and the
webhook deliveries in the caller's transaction (or its own, for the public durable ones)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import STAFF_ROLES, Actor
from portal.audit.log import record
from portal.enforcement.changes import publish
from portal.enforcement.models import ChangeOp, Exemption, ExemptionState
from portal.notifications.outbox import queue_email

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


def activated(exemption: Exemption, *, actor: Actor) -> None:
    """Announce a newly created active exemption (call in the transaction that created it)."""
    publish(exemption, event="exemption.activated", op=ChangeOp.ADD)


def renewed(exemption: Exemption, *, actor: Actor) -> None:
    """Announce a new expiry: consumers that track expiry (exemptions.json, webhooks) see it.

    An active exemption is re-added (idempotent for set consumers); a suspended one is not.
    """
    op = ChangeOp.ADD if exemption.state == ExemptionState.ACTIVE else ChangeOp.REMOVE
    publish(exemption, event="exemption.renewed", op=op)


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
