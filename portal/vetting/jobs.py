"""Queueing vetting runs, inside the caller's transaction; `portal.workflows.vetting` runs them."""

from __future__ import annotations

from portal.core.wakeup import notify_workers
from portal.unblock.models import UnblockRequest
from portal.vetting.models import RunState, VettingRun


def queue_vetting(req: UnblockRequest, *, reason: str, requested_by: str) -> VettingRun:
    """Ask the worker to vet `req`; a run already waiting is reused rather than duplicated."""
    waiting = VettingRun.objects.filter(request=req, state=RunState.PENDING).first()
    if waiting is not None:
        return waiting
    run = VettingRun.objects.create(request=req, reason=reason, requested_by=requested_by)
    notify_workers()
    return run
