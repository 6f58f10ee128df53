from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.models import Actor, Tenant, TenantQuerySet
from portal.accounts.views import user_of
from portal.audit.models import AuditEvent
from portal.core.http import HtmxHttpRequest
from portal.ops.refusals import REFUSALS, refusals_redirect, refused
from portal.unblock.forms import AnswerForm, UnblockRequestForm, WithdrawForm
from portal.unblock.models import State, UnblockRequest
from portal.vetting.summary import summarize
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
    return _request_form(request, tenants=tenants, editing=None)


@login_required
def request_edit(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    if not req.is_editable:
        messages.error(request, "Only drafts can be edited; this request has already been submitted.")
        return redirect("unblock:detail", request_id=req.id)
    return _request_form(request, tenants=_customer_tenants(request), editing=req)


def _request_form(
    request: HtmxHttpRequest, *, tenants: TenantQuerySet, editing: UnblockRequest | None
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
    return render(request, template, {"form": form, "editing": editing})


@login_required
def request_detail(request: HtmxHttpRequest, request_id: UUID) -> HttpResponse:
    req = _get_request_for_customer(request, request_id)
    template = "unblock/request_detail.html"
    if request.htmx:
        # The checks panel polls itself while a vetting run is in progress.
        return render(request, template + "#checks", {"req": req, "vetting": summarize(req, for_staff=False)})
    return render(request, template, _detail_context(req, answer_form=AnswerForm()))


def _detail_context(req: UnblockRequest, *, answer_form: AnswerForm) -> dict[str, object]:
    return {
        "req": req,
        "timeline": timeline_for_customer(req),
        "vetting": summarize(req, for_staff=False),
        "answer_form": answer_form,
        "withdraw_form": WithdrawForm(),
    }


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
    status = 400
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
