from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.accounts.models import Actor, Tenant, TenantQuerySet, is_staff_member
from portal.accounts.views import user_of
from portal.audit.models import AuditEvent
from portal.core.http import HtmxHttpRequest
from portal.enforcement.models import Exemption, ExemptionState
from portal.ops.refusals import REFUSALS, refusals_redirect, refused
from portal.unblock.forms import AnswerForm, UnblockRequestForm, WithdrawForm
from portal.unblock.models import Message, State, UnblockRequest
from portal.vetting.summary import VettingSummary, summarize
from portal.workflows import requests as actions


def _get_request_for_customer(request: HttpRequest, request_id: UUID) -> UnblockRequest:
    """The request if the user is a member of its tenant; 404 otherwise, never 403."""
    queryset = UnblockRequest.objects.for_user(request.user).select_related("tenant")
    return get_object_or_404(queryset.prefetch_related("blocks"), pk=request_id)


def _customer_tenants(request: HttpRequest) -> TenantQuerySet:
    tenants = Tenant.objects.for_user(request.user)
    if not tenants.exists():
        raise Http404("You are not a member of any tenant.")
    return tenants


# How far ahead the home page warns about an exemption's expiry, and how long a denial stays there.
EXPIRY_WARNING = timedelta(days=30)
RECENT_DENIAL = timedelta(days=30)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """What needs the customer now, then their exemptions and open requests."""
    tenants = Tenant.objects.for_user(request.user)
    if not tenants.exists():
        if is_staff_member(request.user):
            return redirect("staff:home")
        return render(request, "accounts/no_tenant.html")
    now = timezone.now()
    reqs = UnblockRequest.objects.for_user(request.user).select_related("tenant").prefetch_related("blocks")
    questions = [
        (req, req.messages.questions().order_by("-created_at").first())
        for req in reqs.filter(state=State.NEEDS_INFO).order_by("state_changed_at")
    ]
    recently_denied = reqs.filter(state=State.DENIED, decided_at__gte=now - RECENT_DENIAL)
    denials = [(req, denial_of(req)) for req in recently_denied.order_by("-decided_at")[:5]]
    exemptions = (
        Exemption.objects.filter(tenant__in=tenants)
        .in_force()
        .select_related("tenant", "request")
        .order_by("state", "expires_at")
    )
    soon = now + EXPIRY_WARNING
    active = [ex for ex in exemptions if ex.state == ExemptionState.ACTIVE]
    # Whole days, because "expires in 9 days" is what a person plans by.
    expiring = [(ex, (ex.expires_at - now).days) for ex in active if ex.expires_at and ex.expires_at <= soon]
    # Once they asked for reinstatement, the next step is the staff's.
    suspended = [
        ex for ex in exemptions if ex.state == ExemptionState.SUSPENDED and not ex.reinstatement_asked_at
    ]
    context = {
        "questions": questions,
        "denials": denials,
        "expiring": expiring,
        "suspended": suspended,
        "drafts": reqs.filter(state=State.DRAFT).order_by("-updated_at")[:5],
        "open_requests": reqs.open().order_by("-submitted_at"),
        "exemptions": exemptions,
        "tenants": tenants,
    }
    context["needs_you"] = bool(questions or denials or expiring or suspended or context["drafts"])
    return render(request, "unblock/home.html", context)


def denial_of(req: UnblockRequest) -> AuditEvent | None:
    """The recorded denial, whose reason is what the customer was told."""
    return AuditEvent.objects.for_object(req).filter(action="request.deny").order_by("-at").first()


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    tenants = _customer_tenants(request)
    reqs = (
        UnblockRequest.objects.for_user(request.user)
        .select_related("tenant")
        .prefetch_related("blocks")
        .order_by("-created_at")
    )
    state = request.GET.get("state", "")
    if state in State.values:
        reqs = reqs.filter(state=state)
    counts = dict(
        UnblockRequest.objects.for_user(request.user).order_by().values_list("state").annotate(n=Count("id"))
    )
    state_counts = [(value, label, counts[value]) for value, label in State.choices if counts.get(value)]
    return render(
        request,
        "unblock/request_list.html",
        {"reqs": reqs[:200], "tenants": tenants, "state": state, "state_counts": state_counts},
    )


@login_required
def request_new(request: HtmxHttpRequest) -> HttpResponse:
    tenants = _customer_tenants(request)
    source = None
    if request.method == "GET" and "from" in request.GET:
        try:
            source_id = UUID(request.GET["from"])
        except ValueError:
            raise Http404("No request to copy from.") from None
        source = _get_request_for_customer(request, source_id)
    return _request_form(request, tenants=tenants, editing=None, source=source)


@login_required
def request_edit(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    if not req.is_editable:
        messages.error(request, "Only drafts can be edited; this request has already been submitted.")
        return redirect("unblock:detail", request_id=req.id)
    return _request_form(request, tenants=_customer_tenants(request), editing=req)


def _request_form(
    request: HtmxHttpRequest,
    *,
    tenants: TenantQuerySet,
    editing: UnblockRequest | None,
    source: UnblockRequest | None = None,
) -> HttpResponse:
    template = "unblock/request_form.html"
    submitting = request.POST.get("action") == "submit"
    if request.method == "POST":
        form = UnblockRequestForm(request.POST, tenants=tenants, submitting=submitting, editing=editing)
        if request.htmx:
            # Validation as the customer types: answer with the feedback of that one field. An
            # htmx request never saves; only the form's own submit buttons do.
            if request.htmx.trigger_name not in form.fields:
                return HttpResponseBadRequest("Live validation needs the name of a form field.")
            form.is_valid()
            return render(request, template + "#field_feedback", {"field": form[request.htmx.trigger_name]})
        if form.is_valid():
            tenant = editing.tenant if editing else form.cleaned_data["tenant"]
            try:
                req = actions.save_request(
                    tenant=tenant,
                    actor=Actor(user=user_of(request)),
                    data=form.to_data(),
                    submit=submitting,
                    editing=editing,
                )
            except ValidationError as exc:
                # Something changed between validation and saving (e.g. a duplicate submission).
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error("addresses", exc)
            else:
                if submitting:
                    messages.success(request, f"Request {req.reference} was submitted for review.")
                else:
                    messages.success(
                        request, f"Draft {req.reference} was saved. Submit it when it is complete."
                    )
                return redirect("unblock:detail", request_id=req.id)
    elif editing is not None:
        form = UnblockRequestForm(
            initial=UnblockRequestForm.initial_from(editing), tenants=tenants, editing=editing
        )
    elif source is not None:
        # A new request starts as a copy of an earlier one, but the policy is accepted afresh.
        initial = UnblockRequestForm.initial_from(source)
        initial["accept_aup"] = False
        form = UnblockRequestForm(initial=initial, tenants=tenants)
    else:
        first = tenants.first()
        form = UnblockRequestForm(
            initial={
                "tenant": first.pk if first else None,
                "abuse_contact": first.abuse_contact if first else "",
            },
            tenants=tenants,
        )
    form.enable_live_validation(request.path)
    return render(request, template, {"form": form, "editing": editing, "source": source})


@login_required
def request_detail(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    template = "unblock/request_detail.html"
    context = _detail_context(req, answer_form=AnswerForm())
    if request.htmx:
        # The page polls while the request is open. Nothing changed: 204, so htmx leaves the page
        # (and whatever the customer is typing) alone; otherwise state, banner, actions and checks
        # are replaced together.
        if request.GET.get("since") == context["version"]:
            return HttpResponse(status=204)
        return render(request, template + "#live", context)
    return render(request, template, context)


def _detail_context(req: UnblockRequest, *, answer_form: AnswerForm) -> dict[str, object]:
    vetting = summarize(req, for_staff=False)
    question: Message | None = None
    if req.state == State.NEEDS_INFO:
        question = req.messages.questions().order_by("-created_at").first()
    return {
        "req": req,
        "timeline": timeline_for_customer(req),
        "vetting": vetting,
        "question": question,
        "denial": denial_of(req) if req.state == State.DENIED else None,
        "fixes": [r for r in vetting.problems if r.customer_fix],
        "answer_form": answer_form,
        "withdraw_form": WithdrawForm(),
        "version": _version(req, vetting),
        "polling": req.is_open or vetting.in_progress,
    }


def _version(req: UnblockRequest, vetting: VettingSummary) -> str:
    """Changes whenever what the page shows at the top changes: the state or the checks."""
    run = vetting.latest.pk if vetting.latest else ""
    return f"{req.state}.{req.state_changed_at.timestamp():.6f}.{run}.{int(vetting.in_progress)}"


# How the customer's timeline names each recorded step of a request.
TIMELINE_TITLES = {
    "request.created": "Request created",
    "request.draft_saved": "Draft edited",
    "request.submit": "Submitted for review",
    "request.start_review": "Review started",
    "request.ask_for_info": "More information requested",
    "request.answer": "Answer sent",
    "request.approve": "Approved",
    "request.deny": "Denied",
    "request.withdraw": "Withdrawn",
    "request.vetted": "Automated checks finished",
    "request.recheck": "Checks asked to run again",
}


def timeline_for_customer(req: UnblockRequest) -> list[dict[str, object]]:
    """State changes and the conversation, oldest first, without staff-only notes."""
    entries: list[dict[str, object]] = []
    for event in (
        AuditEvent.objects.for_object(req).filter(action__startswith="request.").order_by("at", "id")
    ):
        change = ""
        if "state" in event.before and "state" in event.after:
            change = f"{State(event.before['state']).label} → {State(event.after['state']).label}"
        title = TIMELINE_TITLES.get(event.action, event.action)
        entries.append(
            {"at": event.at, "who": event.actor_label, "event": event, "title": title, "change": change}
        )
    for message in req.messages.visible_to_customer():
        entries.append({"at": message.created_at, "who": message.author_label, "message": message})
    entries.sort(key=lambda e: e["at"])  # type: ignore[arg-type,return-value]
    return entries


@require_POST
@login_required
@refusals_redirect("unblock:detail", request_id="request_id")
def request_submit(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    try:
        actions.submit_request(req=req, actor=Actor(user=user_of(request)))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Request {req.reference} was submitted for review.")
    return redirect("unblock:detail", request_id=req.id)


@require_POST
@login_required
def request_recheck(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    if not req.is_open:
        messages.error(request, "Checks run again only on open requests; file a new request instead.")
    else:
        actions.recheck_request(req=req, actor=Actor(user=user_of(request)), by_staff=False)
        messages.success(request, "The checks will run again in a few seconds.")
    return redirect("unblock:detail", request_id=req.id)


@require_POST
@login_required
@refusals_redirect("unblock:detail", request_id="request_id")
def request_withdraw(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is too long; shorten it to 4000 characters or fewer.")
        return redirect("unblock:detail", request_id=req.id)
    actions.withdraw_request(req=req, actor=Actor(user=user_of(request)), reason=form.cleaned_data["reason"])
    messages.success(request, f"Request {req.reference} was withdrawn.")
    return redirect("unblock:detail", request_id=req.id)


@require_POST
@login_required
def request_answer(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    form = AnswerForm(request.POST)
    # The page again with the answer box's error, as the new-request form does: a page, not a
    # failed request (browsers log a 400 document as an error).
    status = 200
    if form.is_valid():
        try:
            actions.answer_request(
                req=req, actor=Actor(user=user_of(request)), answer=form.cleaned_data["text"]
            )
        except REFUSALS as exc:
            status = refused(request, exc)
        else:
            messages.success(request, "Your answer was sent; the request is back with the reviewers.")
            return redirect("unblock:detail", request_id=req.id)
    return render(
        request, "unblock/request_detail.html", _detail_context(req, answer_form=form), status=status
    )
