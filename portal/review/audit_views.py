from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import datetime

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from portal.accounts.access import staff_required
from portal.audit.models import AuditEvent, AuditEventQuerySet
from portal.core.http import HtmxHttpRequest
from portal.lib.keyset import SortKey, paginate

KEYS = (SortKey("at", True, datetime), SortKey("id", True, int))


def action_choices() -> list[tuple[str, object]]:
    """ "Any action", then the actions on record grouped by area, each area's group led by "all"."""
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    groups: dict[str, list[tuple[str, str]]] = {}
    for action in actions:
        area = action.split(".", 1)[0]
        groups.setdefault(area, [(f"{area}.", f"All {area} actions")]).append((action, action))
    return [("", "Any action"), *groups.items()]


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200)
    # Text, not a ChoiceField: the filter is a prefix ("review." is every review action), and an
    # old link with an action no longer in the list should narrow the log, not reset the form.
    action = forms.CharField(required=False, max_length=64, widget=forms.Select)
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    tenant = forms.CharField(required=False, max_length=100, label="Tenant id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


def filtered_events(form: AuditFilterForm) -> AuditEventQuerySet:
    events = AuditEvent.objects.all()
    if not form.is_valid():
        return events
    data = form.cleaned_data
    if data["actor"]:
        events = events.filter(actor_label__icontains=data["actor"])
    if data["action"]:
        events = events.filter(action__startswith=data["action"])
    if data["object_id"]:
        events = events.filter(object_id=data["object_id"])
    if data["tenant"]:
        events = events.filter(tenant__external_id=data["tenant"])
    if data["since"]:
        events = events.filter(at__date__gte=data["since"])
    if data["until"]:
        events = events.filter(at__date__lte=data["until"])
    return events


@staff_required
def audit_log(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = AuditFilterForm(request.GET or None)
    form.fields["action"].widget.choices = action_choices()
    events = filtered_events(form).select_related("tenant")
    if request.GET.get("format") == "csv":
        return _csv(events)
    page = paginate(events, KEYS, request.GET.get("after", ""), 100)
    params = request.GET.copy()
    params.pop("after", None)
    context = {"form": form, "page": page, "params": params.urlencode()}
    template = "review/audit.html"
    if request.htmx:
        return render(request, template + "#events", context)
    return render(request, template, context)


def _csv(events: AuditEventQuerySet) -> StreamingHttpResponse:
    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            [
                "at",
                "actor",
                "action",
                "object_type",
                "object_id",
                "object",
                "tenant",
                "before",
                "after",
                "reason",
                "request_id",
            ]
        )
        for e in events.order_by("at", "id").iterator(chunk_size=2000):
            cells = [
                e.at.isoformat(),
                e.actor_label,
                e.action,
                e.object_type,
                e.object_id,
                e.object_label,
                e.tenant.external_id if e.tenant else "",
                json.dumps(e.before),
                json.dumps(e.after),
                e.reason,
                e.request_id,
            ]
            yield writer.writerow([_safe(c) for c in cells])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{uuid.uuid4().hex[:8]}.csv"'
    return response


def _safe(text: str) -> str:
    # Spreadsheets execute cells that start with these characters (CSV injection); a leading
    # tab or carriage return is dropped by some of them, exposing the character after it.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
