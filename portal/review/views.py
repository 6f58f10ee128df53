from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, QueryDict
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
from portal.ops.refusals import REFUSALS, refusals_redirect, refused
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
from portal.review.models import Approval, DenialReason
from portal.review.policy import four_eyes_reasons, is_approver
from portal.telemetry.charts import Port25Chart, port25_chart
from portal.telemetry.models import SmtpHour
from portal.unblock.models import OPEN_STATES, Message, MessageKind, RequestedBlock, UnblockRequest
from portal.vetting.checks import addresses_of
from portal.vetting.findings import CHECK_TITLES
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


@dataclass(frozen=True)
class QueueRow:
    """A queue line: the request, and what the page works out about it for the reviewer."""

    req: UnblockRequest
    overdue: bool
    failing: list[str]
    customer_replied: bool
    awaits_second_approval: bool

    @classmethod
    def of(cls, req: UnblockRequest, *, now: datetime) -> QueueRow:
        waited = (now - req.submitted_at).total_seconds() if req.submitted_at else 0
        return cls(
            req=req,
            overdue=waited > settings.REVIEW_SLA_HOURS * 3600,
            failing=[CHECK_TITLES.get(c, c) for c in req.failing_checks.split(",") if c],
            customer_replied=getattr(req, "last_public_kind", None) == MessageKind.ANSWER,
            awaits_second_approval=bool(getattr(req, "awaits_second_approval", False)),
        )


# Column headers that sort: what a click asks for, by the current order. Each is one of
# SORT_KEYS, so paging stays keyset-safe; the links drop the cursor, which belongs to one order.
SORT_HEADERS = {
    "waiting": {"oldest": "newest", "newest": "oldest", "risk": "oldest"},
    "risk": {"oldest": "risk", "newest": "risk", "risk": "oldest"},
}
# aria-sort of the column the queue is sorted by ("oldest first" is the longest wait first).
ARIA_SORT = {
    "oldest": ("waiting", "descending"),
    "newest": ("waiting", "ascending"),
    "risk": ("risk", "descending"),
}


def _sort_headers(params: QueryDict, sort: str) -> dict[str, dict[str, str]]:
    headers = {}
    for column, next_sort in SORT_HEADERS.items():
        query = params.copy()
        query.pop("after", None)
        query["sort"] = next_sort[sort]
        sorted_by, direction = ARIA_SORT[sort]
        headers[column] = {
            "url": "?" + query.urlencode(),
            "aria_sort": direction if sorted_by == column else "",
        }
    return headers


def _get_request_for_staff(request_id: UUID) -> UnblockRequest:
    queryset = UnblockRequest.objects.select_related("tenant", "assignee").prefetch_related("blocks")
    return get_object_or_404(queryset, pk=request_id)


@staff_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    reqs = form.apply(UnblockRequest.objects.open(), user=request.user)
    sort = str(request.GET.get("sort")) if request.GET.get("sort") in dict(SORTS) else "oldest"
    page = paginate(
        reqs.annotate(
            risk=Coalesce("risk_score", -1),
            last_public_kind=Subquery(
                Message.objects.filter(request=OuterRef("pk"), internal=False)
                .order_by("-created_at")
                .values("kind")[:1]
            ),
            awaits_second_approval=Exists(Approval.objects.filter(request=OuterRef("pk"), final=False)),
        )
        .select_related("tenant", "assignee")
        .prefetch_related("blocks"),
        SORT_KEYS[sort],
        request.GET.get("after", ""),
        PAGE_SIZE,
    )
    now = timezone.now()
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "form": form,
        "page": page,
        "rows": [QueueRow.of(req, now=now) for req in page.rows],
        "params": params.urlencode(),
        "sla_hours": settings.REVIEW_SLA_HOURS,
        "sort_headers": _sort_headers(request.GET, sort),
    }
    template = "review/queue.html"
    if request.htmx and request.htmx.target == "queue-table":
        return render(request, template + "#table", context)
    open_reqs = UnblockRequest.objects.open().order_by()
    by_state = dict(open_reqs.values_list("state").annotate(n=Count("id")))
    by_band = dict(open_reqs.values_list("risk_band").annotate(n=Count("id")))
    context["state_counts"] = [(s.value, s.label, by_state.get(s.value, 0)) for s in OPEN_STATES]
    context["band_counts"] = [(value, label, by_band.get(value, 0)) for value, label in RiskBand.choices]
    context["bulk_form"] = BulkForm(auto_id="bulk_%s")
    context["canned_texts"] = {str(r.pk): r.text for r in DenialReason.objects.filter(active=True)}
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
    user = user_of(request)
    approver = is_approver(user)
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
        "is_approver": approver,
        "trail": AuditEvent.objects.for_object(req).order_by("at", "id"),
        "approve_form": ApproveForm(
            cidrs=cidrs,
            initial={"cidrs": first.cidrs} if first else None,
            offer_no_expiry=approver,
        ),
        "approve_blocked": _why_not_approve(user, first, approver=approver),
        "deny_form": DenyForm(),
        "canned_texts": {str(r.pk): r.text for r in DenialReason.objects.filter(active=True)},
        "question_form": QuestionForm(),
        "note_form": NoteForm(),
        "assign_form": AssignForm(initial={"assignee": req.assignee_id}),
        "port25": request_port25_chart(req),
    }
    context.update(forms)
    return context


def _why_not_approve(user: User, first: Approval | None, *, approver: bool) -> str:
    """Why this person can't give the final approval, in the workflow's own words; "" if they can."""
    if first is None:
        return ""
    if first.approver_id == user.pk:
        return "You gave the first approval; the final approval must come from another person."
    if not approver:
        return "The final approval of this request needs someone with the approver role."
    return ""


def request_port25_chart(req: UnblockRequest) -> Port25Chart:
    """What the firewall saw the requested addresses do, against the volume the request declares."""
    any_block = Q(pk__in=[])
    for block in req.blocks.all():
        any_block |= overlapping_q(block.network)
    return port25_chart(
        SmtpHour.objects.filter(any_block),
        title="Port-25 connections from the requested addresses per hour, last 7 days",
        declared_daily=req.expected_daily_volume,
    )


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


def _decide[F: forms.Form](
    request: HttpRequest,
    request_id: UUID,
    form_name: str,
    form_for: Callable[[UnblockRequest, QueryDict], F],
    step: Callable[[UnblockRequest, User, F], str],
) -> HttpResponse:
    """Validate the form, take the decision and redirect with what happened; or show the page
    again with the form's errors (400), the refusal (403) or the conflict (409)."""
    req = _get_request_for_staff(request_id)
    form = form_for(req, request.POST)
    status = 400
    if form.is_valid():
        try:
            message = step(req, user_of(request), form)
        except REFUSALS as exc:
            req.refresh_from_db()
            status = refused(request, exc)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, message)
            return redirect("staff:request", request_id=req.id)
    context = _detail_context(request, req, **{form_name: form})
    return render(request, "review/request.html", context, status=status)


def _approve(req: UnblockRequest, user: User, form: ApproveForm) -> str:
    outcome = decisions.approve(
        req=req,
        user=user,
        cidrs=form.cleaned_data["cidrs"],
        expires_at=form.expires_at(),
        note=form.cleaned_data["note"],
    )
    if not outcome.final:
        return f"First approval recorded; the request now waits for {outcome.waiting_for}."
    return f"Approved: {len(outcome.exemptions)} exemption(s) created."


def _deny(req: UnblockRequest, user: User, form: DenyForm) -> str:
    decisions.deny(req=req, user=user, reason=form.cleaned_data["reason"])
    return "Denied; the customer has been told why."


def _ask(req: UnblockRequest, user: User, form: QuestionForm) -> str:
    decisions.request_info(req=req, user=user, question=form.cleaned_data["question"])
    return "Question sent; the request waits for the customer's answer."


def _note(req: UnblockRequest, user: User, form: NoteForm) -> str:
    decisions.add_note(req=req, user=user, text=form.cleaned_data["text"])
    return "Note added (staff only)."


def _assign(req: UnblockRequest, user: User, form: AssignForm) -> str:
    assignee: User | None = form.cleaned_data["assignee"]
    decisions.assign(req=req, user=user, assignee=assignee)
    return f"Assigned to {assignee.email}." if assignee else "Released: the request is unassigned."


@require_POST
@staff_required
def approve(request: HttpRequest, request_id: UUID) -> HttpResponse:
    def form_for(req: UnblockRequest, data: QueryDict) -> ApproveForm:
        return ApproveForm(data, cidrs=[b.cidr for b in req.blocks.all()])

    return _decide(request, request_id, "approve_form", form_for, _approve)


@require_POST
@staff_required
def deny(request: HttpRequest, request_id: UUID) -> HttpResponse:
    return _decide(request, request_id, "deny_form", lambda req, data: DenyForm(data), _deny)


@require_POST
@staff_required
def request_info(request: HttpRequest, request_id: UUID) -> HttpResponse:
    return _decide(request, request_id, "question_form", lambda req, data: QuestionForm(data), _ask)


@require_POST
@staff_required
def add_note(request: HttpRequest, request_id: UUID) -> HttpResponse:
    return _decide(request, request_id, "note_form", lambda req, data: NoteForm(data), _note)


@require_POST
@staff_required
def assign(request: HttpRequest, request_id: UUID) -> HttpResponse:
    # "Claim" is assigning to oneself, from a button with no form fields.
    if request.POST.get("claim"):
        data = QueryDict(mutable=True)
        data["assignee"] = str(user_of(request).pk)
        return _decide(request, request_id, "assign_form", lambda req, _: AssignForm(data), _assign)
    return _decide(request, request_id, "assign_form", lambda req, data: AssignForm(data), _assign)


@require_POST
@staff_required
@refusals_redirect("staff:request", request_id="request_id")
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
        except REFUSALS as exc:
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
