"""Retention: delete rows of the tables that grow with traffic once nobody needs them.

What stays, whatever the settings: the audit log (never pruned), deliveries and emails that are
still pending or have failed, each request's latest finished vetting run with its check results,
and the change feed's last FEED_RETENTION_DAYS (plus what enforcement.changes.prunable_changes
keeps). Deletes go in batches of RETENTION_BATCH_SIZE primary keys, each its own short
transaction, so the worker and the web processes writing these tables never wait long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.enforcement.changes import prunable_changes, raise_pruned_through
from portal.enforcement.models import Attempt, Delivery, DeliveryState
from portal.notifications.models import EmailState, OutboundEmail
from portal.vetting.models import CheckResult, RunState, VettingRun

# A backlog (the first run on an old database) is worked off over several runs rather than in
# one that keeps the periodic lane busy for an hour.
MAX_SECONDS_PER_RUN = 60.0


@dataclass(frozen=True)
class Pruned:
    attempts: int = 0
    deliveries: int = 0
    emails: int = 0
    feed_changes: int = 0
    check_results: int = 0
    vetting_runs: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in vars(self).items())


def superseded_runs(cutoff: datetime) -> models.QuerySet[VettingRun]:
    """Finished runs older than `cutoff` with a later finished run of the same request: the
    pages and the API only show the latest, and pending or running runs are the worker's."""
    later = VettingRun.objects.filter(
        request=OuterRef("request"), state=RunState.DONE, created_at__gt=OuterRef("created_at")
    )
    return VettingRun.objects.filter(
        state__in=(RunState.DONE, RunState.FAILED), created_at__lt=cutoff
    ).filter(Exists(later))


def prune(now: datetime | None = None) -> Pruned:
    now = now or timezone.now()
    deadline = time.monotonic() + MAX_SECONDS_PER_RUN

    def before(days: int) -> datetime:
        return now - timedelta(days=days)

    attempts = Attempt.objects.filter(
        at__lt=before(settings.WEBHOOK_ATTEMPT_RETENTION_DAYS), delivery__state=DeliveryState.DELIVERED
    )
    deliveries = Delivery.objects.filter(
        state=DeliveryState.DELIVERED, delivered_at__lt=before(settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    )
    emails = OutboundEmail.objects.filter(
        state=EmailState.SENT, sent_at__lt=before(settings.EMAIL_RETENTION_DAYS)
    )
    results = CheckResult.objects.filter(
        run__in=superseded_runs(before(settings.CHECK_RESULT_RETENTION_DAYS)).values("pk")
    )
    return Pruned(
        attempts=delete_in_batches(attempts, deadline=deadline),
        deliveries=delete_in_batches(deliveries, deadline=deadline),
        emails=delete_in_batches(emails, deadline=deadline),
        feed_changes=delete_in_batches(
            prunable_changes(before(settings.FEED_RETENTION_DAYS)),
            deadline=deadline,
            before_delete=raise_pruned_through,
        ),
        check_results=delete_in_batches(results, deadline=deadline),
        vetting_runs=delete_in_batches(
            superseded_runs(before(settings.VETTING_RUN_RETENTION_DAYS)), deadline=deadline
        ),
    )


def delete_in_batches(
    queryset: models.QuerySet[Any],
    *,
    deadline: float,
    before_delete: Callable[[Any], None] | None = None,
) -> int:
    """Delete `queryset`'s rows in primary-key order, one short transaction per batch; how many
    rows of its model went (rows deleted with them by a cascade are not counted)."""
    label = queryset.model._meta.label
    deleted = 0
    last: Any = None
    while time.monotonic() < deadline:
        page = queryset.order_by("pk") if last is None else queryset.filter(pk__gt=last).order_by("pk")
        pks = list(page.values_list("pk", flat=True)[: settings.RETENTION_BATCH_SIZE])
        if not pks:
            break
        with transaction.atomic():
            # The conditions again: a row may have changed since it was read (a delivery
            # redelivered, a newer vetting run failed), and only rows that still qualify go.
            batch = queryset.filter(pk__in=pks)
            if before_delete is not None:
                before_delete(batch)
            _, per_model = batch.delete()
        deleted += per_model.get(label, 0)
        last = pks[-1]
    return deleted
