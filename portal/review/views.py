from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts.access import staff_required
from portal.accounts.models import Actor
from portal.accounts.views import user_of
from portal.audit.models import AuditEvent
from portal.core.blocks import overlapping_q
from portal.core.http import HtmxHttpRequest
from portal.lib.keyset import SortKey, paginate
from portal.reputation.models import ListingStatus, ReputationEvent
from portal.reputation.views import lookup_links
from portal.review.forms import (
    SORTS,
    ApproveForm,
    AssignForm,
    BulkForm,
    DenyForm,
    NoteForm,
    QuestionForm,
    QueueFilterForm,
)
from portal.review.policy import DecisionRefused, four_eyes_reasons, is_approver
from portal.unblock.models import OPEN_STATES, IllegalTransition, RequestedBlock, UnblockRequest
from portal.vetting.checks import addresses_of
from portal.vetting.models import RiskBand
from portal.vetting.summary import summarize
from portal.workflows import decisions
from portal.workflows import requests as actions

PAGE_SIZE = 50
SORT_KEYS = {
    "oldest": (SortKey("submitted_at", kind=datetime), SortKey("id", kind=uuid.UUID)),
    "newest": (SortKey("submitted_at", True, datetime), SortKey("id", True, uuid.UUID)),
    "risk": (
        SortKey("risk", True, int),
        SortKey("submitted_at", kind=datetime),
        SortKey("id", kind=uuid.UUID),
    ),
}


def _get_request_for_staff(request_id: UUID) -> UnblockRequest:
    queryset = UnblockRequest.objects.select_related("tenant", "assignee").prefetch_related("blocks")
    return get_object_or_404(queryset, pk=request_id)


@staff_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    reqs = form.apply(UnblockRequest.objects.open(), user=request.user)
    sort = str(request.GET.get("sort")) if request.GET.get("sort") in dict(SORTS) else "oldest"
    page = paginate(
        reqs.annotate(risk=Coalesce("risk_score", -1))
        .select_related("tenant", "assignee")
        .prefetch_related("blocks"),
        SORT_KEYS[sort],
        request.GET.get("after", ""),
        PAGE_SIZE,
    )
    now = timezone.now()
    sla = settings.REVIEW_SLA_HOURS * 3600
    for req in page.rows:
        waited = (now - req.submitted_at).total_seconds() if req.submitted_at else 0
        req.overdue = waited > sla  # type: ignore[attr-defined]
        req.failing_list = [c for c in req.failing_checks.split(",") if c]  # type: ignore[attr-defined]
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "form": form,
        "page": page,
        "params": params.urlencode(),
        "sla_hours": settings.REVIEW_SLA_HOURS,
    }
    template = "review/queue.html"
    if request.htmx and request.htmx.target == "queue-table":
        return render(request, template + "#table", context)
    open_reqs = UnblockRequest.objects.open().order_by()
    by_state = dict(open_reqs.values_list("state").annotate(n=Count("id")))
    by_band = dict(open_reqs.values_list("risk_band").annotate(n=Count("id")))
    context["state_counts"] = [(s.value, s.label, by_state.get(s.value, 0)) for s in OPEN_STATES]
    context["band_counts"] = [(value, label, by_band.get(value, 0)) for value, label in RiskBand.choices]
    context["bulk_form"] = BulkForm()
    return render(request, template, context)


@staff_required
def request_detail(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    vetting = summarize(req, for_staff=True)
    template = "review/request.html"
    if request.htmx:
        return render(request, template + "#checks", {"req": req, "vetting": vetting})
    return render(request, template, _detail_context(request, req, vetting=vetting))


def _detail_context(request: HttpRequest, req: UnblockRequest, **forms: object) -> dict[str, object]:
    cidrs = [b.cidr for b in req.blocks.all()]
    approvals = list(req.approvals.select_related("approver"))
    # Under four-eyes the final approval confirms the first one's addresses: preselect those.
    first = next((a for a in approvals if not a.final), None)
    context: dict[str, object] = {
        "req": req,
        "vetting": forms.pop("vetting", None) or summarize(req, for_staff=True),
        "addresses": _reputation_by_address(list(req.blocks.all())),
        "conversation": req.messages.all(),
        "earlier": UnblockRequest.objects.for_tenant(req.tenant)
        .exclude(pk=req.pk)
        .order_by("-created_at")[:10],
        "exemptions": req.tenant.exemptions.order_by("-created_at")[:10],
        "approvals": approvals,
        "four_eyes": four_eyes_reasons(req),
        "is_approver": is_approver(user_of(request)),
        "trail": AuditEvent.objects.for_object(req).order_by("at", "id"),
        "approve_form": ApproveForm(cidrs=cidrs, initial={"cidrs": first.cidrs} if first else None),
        "deny_form": DenyForm(),
        "question_form": QuestionForm(),
        "note_form": NoteForm(),
        "assign_form": AssignForm(initial={"assignee": req.assignee_id}),
    }
    context.update(forms)
    return context


def _reputation_by_address(blocks: list[RequestedBlock]) -> list[dict[str, object]]:
    """Abuse events and current blocklist listings of each address, in two queries in all."""
    if not blocks:
        return []
    overlaps = [overlapping_q(block.network) for block in blocks]
    any_overlap = Q()
    for overlap in overlaps:
        any_overlap |= overlap
    counts = (
        ReputationEvent.objects.abuse()
        .filter(any_overlap)
        .aggregate(**{f"block{i}": Count("pk", filter=overlap) for i, overlap in enumerate(overlaps)})
    )
    # Listings are kept per address (a block's are those of the addresses the checks looked up).
    members = {block.cidr: list(addresses_of(block.network)) for block in blocks}
    zones: dict[str, list[str]] = {}
    listed = ListingStatus.objects.filter(
        address__in={a for addresses in members.values() for a in addresses}, listed=True
    )
    for address, zone in listed.order_by("address", "zone").values_list("address", "zone"):
        zones.setdefault(address, []).append(zone)
    return [
        {
            "cidr": block.cidr,
            "events": counts[f"block{i}"],
            "listed": [
                zone if address == block.cidr else f"{zone} ({address})"
                for address in members[block.cidr]
                for zone in zones.get(address, [])
            ],
            "links": lookup_links(str(block.network.network_address)),
        }
        for i, block in enumerate(blocks)
    ]


def _decide(
    request: HttpRequest, req: UnblockRequest, form_name: str, form: forms.Form, run: Callable[[], str]
) -> HttpResponse:
    """Validate the form, run the decision and redirect; or show the page again with the form's
    errors (400), the refusal (403) or the conflict (409)."""
    if not form.is_valid():
        return render(
            request, "review/request.html", _detail_context(request, req, **{form_name: form}), status=400
        )
    try:
        message = run()
    except (DecisionRefused, IllegalTransition) as exc:
        req.refresh_from_db()
        status = 409 if isinstance(exc, IllegalTransition) else 403
        messages.error(request, str(exc))
        return render(
            request, "review/request.html", _detail_context(request, req, **{form_name: form}), status=status
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return render(
            request, "review/request.html", _detail_context(request, req, **{form_name: form}), status=400
        )
    messages.success(request, message)
    return redirect("staff:request", request_id=req.id)


@require_POST
@staff_required
def approve(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    form = ApproveForm(request.POST, cidrs=[b.cidr for b in req.blocks.all()])

    def run() -> str:
        outcome = decisions.approve(
            req=req,
            user=user_of(request),
            cidrs=form.cleaned_data["cidrs"],
            expires_at=form.expires_at(),
            note=form.cleaned_data["note"],
        )
        if not outcome.final:
            return f"First approval recorded; the request now waits for {outcome.waiting_for}."
        return f"Approved: {len(outcome.exemptions)} exemption(s) created."

    return _decide(request, req, "approve_form", form, run)


@require_POST
@staff_required
def deny(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    form = DenyForm(request.POST)

    def run() -> str:
        decisions.deny(req=req, user=user_of(request), reason=form.cleaned_data["reason"])
        return "Denied; the customer has been told why."

    return _decide(request, req, "deny_form", form, run)


@require_POST
@staff_required
def request_info(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    form = QuestionForm(request.POST)

    def run() -> str:
        decisions.request_info(req=req, user=user_of(request), question=form.cleaned_data["question"])
        return "Question sent; the request waits for the customer's answer."

    return _decide(request, req, "question_form", form, run)


@require_POST
@staff_required
def add_note(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    form = NoteForm(request.POST)

    def run() -> str:
        decisions.add_note(req=req, user=user_of(request), text=form.cleaned_data["text"])
        return "Note added (staff only)."

    return _decide(request, req, "note_form", form, run)


@require_POST
@staff_required
def assign(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    if request.POST.get("claim"):
        form = AssignForm({"assignee": user_of(request).pk})
    else:
        form = AssignForm(request.POST)

    def run() -> str:
        assignee: User | None = form.cleaned_data["assignee"]
        decisions.assign(req=req, user=user_of(request), assignee=assignee)
        return f"Assigned to {assignee.email}." if assignee else "Released: the request is unassigned."

    return _decide(request, req, "assign_form", form, run)


@require_POST
@staff_required
def request_recheck(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_staff(request_id)
    actions.recheck_request(req=req, actor=Actor(user=user_of(request)), by_staff=True)
    messages.success(request, "The checks will run again in a few seconds.")
    return redirect("staff:request", request_id=req.id)


@require_POST
@staff_required
def bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    if not ids or not form.is_valid():
        messages.error(request, "Select at least one request and an action.")
        return _back_to_queue(request)
    user = user_of(request)
    action = form.cleaned_data["action"]
    reason = "\n\n".join(
        p
        for p in (
            (form.cleaned_data["canned"].text if form.cleaned_data["canned"] else ""),
            form.cleaned_data["text"].strip(),
        )
        if p
    )
    if action == "deny" and not reason:
        messages.error(request, "Pick or write a reason to deny: the customers need to know why.")
        return _back_to_queue(request)
    if action == "assign" and form.cleaned_data["assignee"] is None:
        messages.error(request, "Choose whom to assign the selected requests to.")
        return _back_to_queue(request)
    done, skipped = 0, []
    for req in UnblockRequest.objects.filter(pk__in=ids).select_related("tenant"):
        try:
            if action == "deny":
                decisions.deny(req=req, user=user, reason=reason)
            else:
                target = user if action == "claim" else form.cleaned_data["assignee"]
                decisions.assign(req=req, user=user, assignee=target)
        except (DecisionRefused, IllegalTransition) as exc:
            skipped.append(f"{req.reference}: {exc}")
        else:
            done += 1
    messages.success(request, f"{done} request(s) updated.")
    for line in skipped:
        messages.warning(request, f"Skipped {line}")
    return _back_to_queue(request)


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    # `next` is the queue with its filters; anything else (another site) is ignored.
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/review/") else "staff:home")
