from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.models import Actor
from portal.accounts.views import user_of
from portal.core.http import HtmxHttpRequest
from portal.reputation.models import ListingStatus, ReputationEvent
from portal.reputation.views import lookup_links
from portal.review.access import staff_required
from portal.unblock import actions
from portal.unblock.models import UnblockRequest
from portal.vetting.summary import summarize


def _get_request_for_staff(request_id: UUID) -> UnblockRequest:
    queryset = UnblockRequest.objects.select_related("tenant").prefetch_related("blocks")
    return get_object_or_404(queryset, pk=request_id)


@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    reqs = (
        UnblockRequest.objects.open()
        .select_related("tenant")
        .prefetch_related("blocks")
        .order_by("submitted_at")
    )
    return render(request, "review/queue.html", {"reqs": reqs[:200]})


@staff_required
def request_detail(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    vetting = summarize(req, for_staff=True)
    template = "review/request.html"
    if request.htmx:
        return render(request, template + "#checks", {"req": req, "vetting": vetting})
    addresses = [
        {
            "cidr": block.cidr,
            "events": ReputationEvent.objects.about(block.network).abuse().count(),
            "listed": ListingStatus.objects.filter(address=block.cidr, listed=True).values_list(
                "zone", flat=True
            ),
            "links": lookup_links(str(block.network.network_address)),
        }
        for block in req.blocks.all()
    ]
    return render(
        request,
        template,
        {
            "req": req,
            "vetting": vetting,
            "addresses": addresses,
            "messages_all": req.messages.all(),
            "earlier": UnblockRequest.objects.for_tenant(req.tenant)
            .exclude(pk=req.pk)
            .order_by("-created_at")[:10],
        },
    )


@require_POST
@staff_required
def request_recheck(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    actions.recheck_request(req=req, actor=Actor(user=user_of(request)), by_staff=True)
    messages.success(request, "The checks will run again in a few seconds.")
    return redirect("staff:request", request_id=req.id)
