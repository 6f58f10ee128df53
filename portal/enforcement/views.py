"""Staff pages for exemptions and webhook endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.access import staff_required
from portal.accounts.models import Actor, roles_of
from portal.accounts.views import user_of
from portal.core.http import HtmxHttpRequest
from portal.enforcement import endpoints
from portal.enforcement.forms import EndpointForm, ReasonForm, RedeliverRangeForm
from portal.enforcement.models import Delivery, Exemption, ExemptionState, WebhookEndpoint
from portal.enforcement.webhooks import redeliver
from portal.ops.refusals import refusals_redirect
from portal.review.policy import ensure_may_act_for
from portal.workflows import exemptions as actions
from portal.workflows.periodic import last_dnsbl_pass


def admin_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Webhook endpoints decide where exemption data goes: admins only (others get 404)."""

    @staff_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if "admin" not in roles_of(request.user):
            raise Http404("Not found")
        return view(request, *args, **kwargs)

    return wrapper


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=user_of(request))


@staff_required
def exemption_list(request: HttpRequest) -> HttpResponse:
    exemptions = Exemption.objects.select_related("tenant", "request").order_by("-state_changed_at")
    state = request.GET.get("state", "")
    if state in ExemptionState.values:
        exemptions = exemptions.filter(state=state)
    if q := request.GET.get("q", "").strip():
        exemptions = exemptions.filter(cidr__startswith=q) | exemptions.filter(tenant__external_id=q)
    return render(
        request,
        "enforcement/exemptions.html",
        {
            "exemptions": exemptions[:200],
            "state": state,
            "q": q,
            "states": ExemptionState.choices,
            "dnsbl_pass": last_dnsbl_pass(),
        },
    )


@require_POST
@staff_required
@refusals_redirect("staff:exemptions")
def exemption_change(request: HttpRequest, exemption_id: UUID, event: str) -> HttpResponse:
    if event not in ("suspended", "reinstated", "revoked"):
        raise Http404("Unknown change")
    exemption = get_object_or_404(Exemption.objects.select_related("tenant"), pk=exemption_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason (up to 2000 characters): the tenant is told.")
        return redirect("staff:exemptions")
    ensure_may_act_for(user_of(request), exemption.tenant)
    actions.change(exemption, f"exemption.{event}", actor=_actor(request), reason=form.cleaned_data["reason"])
    messages.success(request, f"{exemption.cidr} {event}.")
    return redirect("staff:exemptions")


@admin_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = endpoints.save_endpoint(form.save(commit=False), actor=_actor(request), created=True)
        messages.success(request, "Endpoint added. Copy its signing secret to the receiver.")
        return redirect("staff:webhook", endpoint_id=endpoint.id)
    return render(
        request,
        "enforcement/webhooks.html",
        {"endpoints": WebhookEndpoint.objects.all(), "form": form},
        status=400 if form.errors else 200,
    )


@admin_required
def endpoint_detail(request: HtmxHttpRequest, endpoint_id: UUID) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    form = EndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        endpoints.save_endpoint(form.save(commit=False), actor=_actor(request), created=False)
        messages.success(request, "Endpoint saved.")
        return redirect("staff:webhook", endpoint_id=endpoint.id)
    deliveries = endpoint.deliveries.prefetch_related("attempt_log")[:100]
    context = {
        "endpoint": endpoint,
        "form": form,
        "deliveries": deliveries,
        "range_form": RedeliverRangeForm(),
    }
    template = "enforcement/webhook.html"
    if request.htmx:
        return render(request, template + "#log", context)
    return render(request, template, context, status=400 if form.errors else 200)


@require_POST
@admin_required
def endpoint_action(request: HttpRequest, endpoint_id: UUID, action: str) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    actor = _actor(request)
    if action == "rotate":
        endpoints.rotate_secret(endpoint, actor=actor)
        messages.success(request, "New secret created; both secrets sign messages during the overlap.")
    elif action == "test":
        delivery = endpoints.send_test_event(endpoint, actor=actor)
        messages.success(request, f"Test event {delivery.message_id} queued.")
    elif action == "redeliver-range":
        form = RedeliverRangeForm(request.POST)
        if form.is_valid():
            n = endpoints.redeliver_range(
                endpoint, since=form.cleaned_data["since"], until=form.cleaned_data["until"], actor=actor
            )
            messages.success(request, f"{n} failed message(s) queued again.")
        else:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
    elif action == "delete":
        endpoints.delete_endpoint(endpoint, actor=actor)
        messages.success(request, "Endpoint deleted.")
        return redirect("staff:webhooks")
    else:
        raise Http404("Unknown action")
    return redirect("staff:webhook", endpoint_id=endpoint.id)


@require_POST
@admin_required
def delivery_redeliver(request: HtmxHttpRequest, endpoint_id: UUID, delivery_id: UUID) -> HttpResponse:
    delivery = get_object_or_404(Delivery, uuid=delivery_id, endpoint_id=endpoint_id)
    redeliver([delivery], actor=_actor(request))
    if request.htmx:
        # The button swaps the delivery log in place, showing the message pending again.
        endpoint = delivery.endpoint
        deliveries = endpoint.deliveries.prefetch_related("attempt_log")[:100]
        context = {"endpoint": endpoint, "deliveries": deliveries, "redelivered": delivery}
        return render(request, "enforcement/webhook.html#log", context)
    messages.success(request, f"{delivery.message_id} queued again (same webhook-id).")
    return redirect("staff:webhook", endpoint_id=endpoint_id)
