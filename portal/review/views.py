from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.review.access import staff_required
from portal.unblock.models import UnblockRequest


@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    reqs = (
        UnblockRequest.objects.open()
        .select_related("tenant")
        .prefetch_related("blocks")
        .order_by("submitted_at")
    )
    return render(request, "review/queue.html", {"reqs": reqs[:200]})
