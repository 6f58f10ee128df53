"""Moving a request through its state machine and adding to its conversation.

Building blocks of the workflow steps in `portal.workflows`: each writes the audit event and
queues the emails it causes in the caller's transaction.
"""

from __future__ import annotations

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.notifications.outbox import queue_email
from portal.unblock.models import Message, UnblockRequest


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
