"""Queueing vetting runs (inside the caller's transaction) and running them from the worker."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.core.wakeup import notify_workers
from portal.unblock.models import UnblockRequest
from portal.vetting.models import RunState, VettingRun

log = logging.getLogger(__name__)


def queue_vetting(req: UnblockRequest, *, reason: str, requested_by: str) -> VettingRun:
    """Ask the worker to vet `req`; a run already waiting is reused rather than duplicated."""
    waiting = VettingRun.objects.filter(request=req, state=RunState.PENDING).first()
    if waiting is not None:
        return waiting
    run = VettingRun.objects.create(request=req, reason=reason, requested_by=requested_by)
    notify_workers()
    return run


def run_due_vetting(limit: int = 10) -> int:
    from portal.vetting.runner import vet

    done = 0
    lease = timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    for run in VettingRun.objects.due().order_by("created_at")[:limit]:
        if not run.claim(lease):
            continue
        try:
            vet(run)
        except Exception as exc:
            # Give up after a few attempts so that a request whose data breaks a check can't
            # block the queue; reviewers see the failure and can re-check.
            log.exception("vetting run %s failed", run.pk)
            give_up = run.attempts + 1 >= 3
            VettingRun.objects.filter(pk=run.pk).update(
                state=RunState.FAILED if give_up else RunState.PENDING,
                claimed_until=timezone.now() + timedelta(seconds=30),
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            continue
        done += 1
    return done
