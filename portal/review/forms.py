from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Q
from django.utils import timezone

from portal.accounts.models import STAFF_ROLES
from portal.review.models import DenialReason
from portal.unblock.models import OPEN_STATES, UnblockRequestQuerySet
from portal.unblock.rules import TEXT_LIMIT
from portal.vetting.findings import CHECK_TITLES
from portal.vetting.models import RiskBand


def staff_users() -> Any:
    return (
        User.objects.filter(Q(groups__name__in=STAFF_ROLES) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("email")
    )


SORTS = [("oldest", "Oldest first"), ("newest", "Newest first"), ("risk", "Highest risk first")]


class QueueFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    state = forms.ChoiceField(
        required=False, choices=[("", "Open (any)"), *[(s.value, s.label) for s in OPEN_STATES]]
    )
    band = forms.ChoiceField(required=False, choices=[("", "Any risk"), *RiskBand.choices], label="Risk")
    assignee = forms.ChoiceField(required=False, label="Assignee")
    failing = forms.ChoiceField(
        required=False, choices=[("", "Any checks"), *CHECK_TITLES.items()], label="Failing check"
    )
    tenant = forms.CharField(required=False, max_length=100, label="Tenant id")
    overdue = forms.BooleanField(required=False, label="Overdue only")
    sort = forms.ChoiceField(required=False, choices=SORTS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Anyone"), ("mine", "Mine"), ("unassigned", "Unassigned")]
        choices += [(str(u.pk), u.email) for u in staff_users()]
        field = self.fields["assignee"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def apply(
        self, reqs: UnblockRequestQuerySet, *, user: AbstractBaseUser | AnonymousUser
    ) -> UnblockRequestQuerySet:
        """The queue (web page and reviewer API) narrowed by these filters; `user` is "mine"."""
        if not self.is_valid():
            return reqs
        data = self.cleaned_data
        if data["state"]:
            reqs = reqs.filter(state=data["state"])
        if data["band"]:
            reqs = reqs.filter(risk_band=data["band"])
        if data["overdue"]:
            reqs = reqs.overdue(settings.REVIEW_SLA_HOURS)
        if data["assignee"] == "mine":
            reqs = reqs.assigned_to(user)
        elif data["assignee"] == "unassigned":
            reqs = reqs.unassigned()
        elif data["assignee"]:
            reqs = reqs.filter(assignee_id=data["assignee"])
        if data["failing"]:
            reqs = reqs.failing(data["failing"])
        if data["tenant"]:
            reqs = reqs.filter(tenant__external_id=data["tenant"])
        if data["q"]:
            reqs = reqs.search(data["q"])
        return reqs


class ApproveForm(forms.Form):
    cidrs = forms.MultipleChoiceField(label="Addresses to approve", widget=forms.CheckboxSelectMultiple)
    expiry = forms.ChoiceField(
        choices=[
            ("30", "30 days"),
            ("90", "90 days"),
            ("180", "180 days"),
            ("365", "1 year"),
            ("never", "No expiry (approvers only)"),
        ],
    )
    note = forms.CharField(required=False, max_length=TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, cidrs: list[str], offer_no_expiry: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["cidrs"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(c, c) for c in cidrs]
        field.initial = cidrs
        expiry = self.fields["expiry"]
        expiry.initial = str(settings.EXEMPTION_DEFAULT_DAYS)
        if expiry.initial not in dict(expiry.choices):  # type: ignore[attr-defined]
            expiry.choices = [(expiry.initial, f"{expiry.initial} days"), *expiry.choices]  # type: ignore[attr-defined]
        if not offer_no_expiry:
            # Shown to reviewers without "never": the page says why instead of offering it. A
            # posted "never" still reaches the workflow, which refuses it with the reason.
            expiry.widget.choices = [c for c in expiry.choices if c[0] != "never"]  # type: ignore[attr-defined]

    def expires_at(self) -> Any:
        value = self.cleaned_data["expiry"]
        return None if value == "never" else timezone.now() + timedelta(days=int(value))


class DenyForm(forms.Form):
    canned = forms.ModelChoiceField(
        queryset=DenialReason.objects.filter(active=True),
        required=False,
        label="Reason",
        empty_label="Write my own",
    )
    text = forms.CharField(
        required=False,
        max_length=TEXT_LIMIT,
        label="Message to the customer",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The note form on the same page has a "text" field too: keep the ids apart.
        kwargs.setdefault("auto_id", "deny_%s")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        canned, text = cleaned.get("canned"), (cleaned.get("text") or "").strip()
        if canned is None and not text:
            raise forms.ValidationError("Pick a reason or write one: the customer needs to know why.")
        cleaned["reason"] = "\n\n".join(part for part in (canned.text if canned else "", text) if part)
        return cleaned


class QuestionForm(forms.Form):
    question = forms.CharField(
        max_length=TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 3}), label="Question to the customer"
    )


class NoteForm(forms.Form):
    text = forms.CharField(
        max_length=TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 2}), label="Internal note"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "note_%s")
        super().__init__(*args, **kwargs)


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Nobody (release)",
        # It sits next to its button in the page head, with no room for a visible label.
        widget=forms.Select(attrs={"aria-label": "Assign to"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = staff_users()


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=[("claim", "Assign to me"), ("assign", "Assign"), ("deny", "Deny")])
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Choose a person"
    )
    canned = forms.ModelChoiceField(
        queryset=DenialReason.objects.filter(active=True), required=False, empty_label="Write my own"
    )
    text = forms.CharField(required=False, max_length=TEXT_LIMIT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = staff_users()
