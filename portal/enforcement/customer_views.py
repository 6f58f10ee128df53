"""The customer's exemptions: expiry, renewal, and asking for reinstatement after a suspension."""

from __future__ import annotations

from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts.models import STAFF_ROLES, Actor, Tenant
from portal.accounts.views import user_of
from portal.audit.log import record
from portal.enforcement.models import Exemption, ExemptionState
from portal.notifications.outbox import queue_email
from portal.unblock import actions
from portal.unblock.rules import RequestData


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
    if exemption.state not in (ExemptionState.ACTIVE, ExemptionState.SUSPENDED):
        messages.error(request, "Only exemptions in force can be renewed; file a new request instead.")
        return redirect("exemptions")
    pending = exemption.renewals.filter(state__in=("draft", "submitted", "in_review", "needs_info")).first()
    if pending is not None:
        messages.info(request, f"Renewal {pending.reference} is already open.")
        return redirect("unblock:detail", request_id=pending.id)
    original = exemption.request
    data = RequestData(addresses=[exemption.cidr])
    if original is not None:
        data = RequestData(
            addresses=[exemption.cidr],
            use_case=original.use_case,
            justification=original.justification,
            mail_software=original.mail_software,
            sending_domains=list(original.sending_domains),
            expected_daily_volume=original.expected_daily_volume,
            bounce_handling=original.bounce_handling,
            abuse_contact=original.abuse_contact,
        )
    req = actions.save_request(
        tenant=exemption.tenant,
        actor=Actor(user=user_of(request)),
        data=data,
        submit=False,
        renewal_of=exemption,
    )
    messages.success(
        request,
        "A renewal draft was created from your earlier request. Check it, accept the policy and submit it.",
    )
    return redirect("unblock:edit", request_id=req.id)


@require_POST
@login_required
def ask_reinstatement(request: HttpRequest, exemption_id: UUID) -> HttpResponse:
    exemption = _get_exemption_for_customer(request, exemption_id)
    form = ReinstatementForm(request.POST)
    if exemption.state != ExemptionState.SUSPENDED:
        messages.error(request, "Only a suspended exemption can be reinstated.")
    elif not form.is_valid():
        messages.error(
            request, "Explain the cause and the fix (up to 4000 characters) so that staff can decide."
        )
    else:
        actor = Actor(user=user_of(request))
        with transaction.atomic(durable=True):
            Exemption.objects.filter(pk=exemption.pk).update(
                reinstatement_asked_at=timezone.now(), reinstatement_note=form.cleaned_data["note"]
            )
            record(
                actor=actor,
                action="exemption.reinstatement_asked",
                obj=exemption,
                tenant_id=exemption.tenant_id,
                reason=form.cleaned_data["note"],
            )
            staff = User.objects.filter(groups__name__in=STAFF_ROLES, is_active=True).values_list(
                "email", flat=True
            )
            queue_email(
                to=list(staff),
                template="emails/reinstatement_asked.txt",
                context={"exemption": exemption, "note": form.cleaned_data["note"], "actor": actor.label},
            )
        messages.success(request, "Staff will review your explanation and decide on reinstatement.")
    return redirect("exemptions")
