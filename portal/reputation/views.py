from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.accounts.access import staff_required
from portal.accounts.models import Actor, Allocation, Tenant
from portal.accounts.views import user_of
from portal.core.http import HtmxHttpRequest
from portal.enforcement.models import Exemption
from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.reputation.arf import ArfError
from portal.reputation.forms import ArfUploadForm, HistoryFilterForm, LookupForm, NoteForm
from portal.reputation.models import Kind, ListingStatus, ReputationEvent, ReputationEventQuerySet, Source
from portal.telemetry.charts import Port25Chart, port25_chart
from portal.telemetry.models import SmtpHour
from portal.unblock.models import RequestedBlock, UnblockRequest
from portal.workflows.reputation import EventSpec, ingest_arf, ingest_event

EVENT_LIMIT = 200


def lookup_links(address: str) -> list[tuple[str, str]]:
    return [(name, template.format(ip=address)) for name, template in settings.LOOKUP_LINKS.items()]


def _filtered(
    events: ReputationEventQuerySet, request: HttpRequest
) -> tuple[ReputationEventQuerySet, HistoryFilterForm]:
    form = HistoryFilterForm(request.GET or None)
    if form.is_valid():
        if source := form.cleaned_data["source"]:
            events = events.filter(source=source)
        if kind := form.cleaned_data["kind"]:
            events = events.filter(kind=kind)
    return events, form


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    form = LookupForm(request.GET or None)
    if form.is_valid():
        query = form.cleaned_data["q"].strip()
        try:
            network = parse_block(query)
        except BlockError:
            tenant = Tenant.objects.filter(Q(external_id=query) | Q(name__icontains=query)).first()
            if tenant is not None:
                return redirect("reputation:tenant", tenant_id=tenant.pk)
            form.add_error("q", f"No address, block or tenant matches “{query}”.")
        else:
            return redirect("reputation:address", address=str(network))
    recent = ReputationEvent.objects.select_related("tenant")[:50]
    return render(
        request,
        "reputation/index.html",
        {"form": form, "upload_form": ArfUploadForm(), "note_form": NoteForm(), "recent": recent},
    )


@staff_required
def address_history(request: HtmxHttpRequest, address: str) -> HttpResponse:
    try:
        network = parse_block(address)
    except BlockError:
        raise Http404("Not an address or block") from None
    holder = Allocation.objects.active().covering(network).select_related("tenant").first()
    events, filter_form = _filtered(ReputationEvent.objects.about(network).select_related("tenant"), request)
    context: dict[str, object] = {
        "network": network,
        "events": list(events[:EVENT_LIMIT]),
        "event_limit": EVENT_LIMIT,
        "filter_form": filter_form,
        "holder": holder.tenant if holder else None,
        "holder_id": holder.tenant_id if holder else None,
    }
    template = "reputation/address.html"
    if request.htmx:
        return render(request, template + "#timeline", context)
    context.update(
        {
            "statuses": ListingStatus.objects.filter(address__in=_addresses(network)).order_by(
                "address", "zone"
            ),
            "allocations": Allocation.objects.overlapping(network)
            .select_related("tenant")
            .order_by("-assigned_at"),
            "blocks": RequestedBlock.objects.overlapping(network)
            .select_related("request", "request__tenant")
            .order_by("-request__created_at")[:50],
            "exemptions": Exemption.objects.overlapping(network)
            .select_related("tenant")
            .order_by("-created_at")[:50],
            "links": lookup_links(str(network.network_address)),
            "note_form": NoteForm(initial={"address": str(network)}),
            "port25": address_port25_chart(network),
        }
    )
    return render(request, template, context)


def address_port25_chart(network: Network) -> Port25Chart:
    """The address's hourly port-25 counts; the line is what its exemption's request declared."""
    exemption = Exemption.objects.in_force().overlapping(network).select_related("request").first()
    declared = exemption.request.expected_daily_volume if exemption and exemption.request else None
    return port25_chart(
        SmtpHour.objects.overlapping(network),
        title=f"Port-25 connections from {network} per hour, last 7 days",
        declared_daily=declared,
    )


def tenant_port25_chart(tenant: Tenant) -> Port25Chart:
    """The tenant's hourly port-25 counts; the line is the sum its exemptions in force declared."""
    volumes = (
        Exemption.objects.in_force()
        .filter(tenant=tenant, request__isnull=False)
        .values_list("request_id", "request__expected_daily_volume")
        .distinct()
    )
    declared = sum(volume or 0 for _, volume in volumes) or None
    return port25_chart(
        SmtpHour.objects.filter(tenant=tenant),
        title=f"Port-25 connections from {tenant.name}'s addresses per hour, last 7 days",
        declared_daily=declared,
    )


def _addresses(network: Network) -> list[str]:
    if network.num_addresses > 256:
        return [str(network.network_address)]
    return [str(a) for a in network]


@staff_required
def tenant_history(request: HtmxHttpRequest, tenant_id: UUID) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    events, filter_form = _filtered(ReputationEvent.objects.filter(tenant=tenant), request)
    context: dict[str, object] = {
        "tenant": tenant,
        "events": list(events[:EVENT_LIMIT]),
        "event_limit": EVENT_LIMIT,
        "filter_form": filter_form,
        "holder_id": tenant.pk,
    }
    template = "reputation/tenant.html"
    if request.htmx:
        return render(request, template + "#timeline", context)
    context.update(
        {
            "requests": UnblockRequest.objects.for_tenant(tenant).prefetch_related("blocks")[:100],
            "exemptions": Exemption.objects.filter(tenant=tenant).order_by("-created_at")[:100],
            "allocations": Allocation.objects.filter(tenant=tenant).order_by("-assigned_at"),
            "counts": {
                "complaints": tenant.reputation_events.filter(kind=Kind.COMPLAINT).count(),
                "listings": tenant.reputation_events.filter(kind=Kind.LISTED, abuse=True).count(),
            },
            "port25": tenant_port25_chart(tenant),
        }
    )
    return render(request, template, context)


@require_POST
@staff_required
def upload_arf(request: HttpRequest) -> HttpResponse:
    form = ArfUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            event = ingest_arf(raw=form.cleaned_data["report"], actor=Actor(user=user_of(request)))
        except ArfError as exc:
            form.add_error("report", str(exc))
        else:
            messages.success(request, f"Complaint recorded for {event.cidr}.")
            return redirect("reputation:address", address=event.cidr)
    recent = ReputationEvent.objects.select_related("tenant")[:50]
    return render(
        request,
        "reputation/index.html",
        {"form": LookupForm(), "upload_form": form, "note_form": NoteForm(), "recent": recent},
        status=400,
    )


@require_POST
@staff_required
def add_note(request: HttpRequest) -> HttpResponse:
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        next_url = request.POST.get("next", "")
        return redirect(next_url if next_url.startswith("/reputation/") else reverse("reputation:index"))
    network = form.cleaned_data["address"]
    ingest_event(
        spec=EventSpec(
            source=Source.MANUAL,
            kind=Kind.NOTE,
            network=network,
            summary=form.cleaned_data["summary"],
            abuse=False,
        ),
        actor=Actor(user=user_of(request)),
    )
    messages.success(request, "Note added.")
    if network is not None:
        return redirect("reputation:address", address=str(network))
    return redirect("reputation:index")
