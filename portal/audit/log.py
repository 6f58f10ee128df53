"""Writing audit events. Call inside the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django.contrib.auth.models import User
from django.db import models

from portal.audit.models import AuditEvent
from portal.core.middleware import current_request_id


class Actor(Protocol):
    """Who caused a change (`portal.accounts.models.Actor` is the one in use): the audit log
    sits below accounts, so it names only what it stores."""

    @property
    def user(self) -> User | None: ...

    @property
    def label(self) -> str: ...


def record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    tenant_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    event = _event(actor, action, obj, tenant_id, before, after, reason, current_request_id.get())
    event.save()
    return event


def record_each(
    *, actor: Actor, action: str, entries: Iterable[tuple[models.Model, Any, dict[str, Any]]]
) -> list[AuditEvent]:
    """`record` for many objects at once, in one INSERT: (object, tenant id, after) each."""
    request_id = current_request_id.get()
    rows = [
        _event(actor, action, obj, tenant_id, None, after, "", request_id)
        for obj, tenant_id, after in entries
    ]
    return AuditEvent.objects.bulk_create(rows, batch_size=1000)


def _event(
    actor: Actor,
    action: str,
    obj: models.Model,
    tenant_id: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str,
    request_id: str,
) -> AuditEvent:
    return AuditEvent(
        actor=actor.user,
        actor_label=actor.label,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_label=str(obj)[:200],
        tenant_id=tenant_id,
        before=before or {},
        after=after or {},
        reason=reason,
        request_id=request_id,
    )
