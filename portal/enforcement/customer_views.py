"""The customer's exemptions: expiry, renewal, and asking for reinstatement after a suspension."""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.models import Actor, Tenant
from portal.accounts.views import user_of
from portal.enforcement.models import Exemption
from portal.ops.refusals import refusals_redirect
from portal.workflows import exemptions, requests


class ReinstatementForm(forms.Form):
    note = forms.CharField(
        label="What was the cause, and what did you change?",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


def _get_exemption_for_customer(request: HttpRequest, exemption_id: UUID) -> Exemption:
    exemptions = Exemption.objects.filter(tenant__in=Tenant.objects.for_user(request.user))
    return get_object_or_404(exemptions.select_related("tenant", "request"), pk=exemption_id)


@login_required
def exemption_list(request: HttpRequest) -> HttpResponse:
    exemptions = (
        Exemption.objects.filter(tenant__in=Tenant.objects.for_user(request.user))
        .select_related("tenant", "request")
        .prefetch_related("renewals")
        .order_by("state", "expires_at")
    )
    return render(
        request, "enforcement/my_exemptions.html", {"exemptions": exemptions, "form": ReinstatementForm()}
    )


@require_POST
@login_required
def renew(request: HttpRequest, exemption_id: UUID) -> HttpResponse:
    exemption = _get_exemption_for_customer(request, exemption_id)
    if not exemption.is_in_force:
        messages.error(request, "Only exemptions in force can be renewed; file a new request instead.")
        return redirect("exemptions")
    pending = exemptions.open_renewal(exemption)
    if pending is not None:
        messages.info(request, f"Renewal {pending.reference} is already open.")
        return redirect("unblock:detail", request_id=pending.id)
    req = requests.draft_renewal(exemption=exemption, actor=Actor(user=user_of(request)))
    messages.success(
        request,
        "A renewal draft was created from your earlier request. Check it, accept the policy and submit it.",
    )
    return redirect("unblock:edit", request_id=req.id)


@require_POST
@login_required
@refusals_redirect("exemptions")
def ask_reinstatement(request: HttpRequest, exemption_id: UUID) -> HttpResponse:
    exemption = _get_exemption_for_customer(request, exemption_id)
    form = ReinstatementForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Explain the cause and the fix (up to 4000 characters) so that staff can decide."
        )
        return redirect("exemptions")
    exemptions.ask_reinstatement(
        exemption=exemption, actor=Actor(user=user_of(request)), note=form.cleaned_data["note"]
    )
    messages.success(request, "Staff will review your explanation and decide on reinstatement.")
    return redirect("exemptions")
