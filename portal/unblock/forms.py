from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from portal.accounts.models import Tenant
from portal.enforcement import grantable
from portal.unblock import rules
from portal.unblock.models import UnblockRequest, UseCase


class UnblockRequestForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), empty_label=None)
    addresses = forms.CharField(
        label="Addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One IPv4 or IPv6 address or CIDR block per line, e.g. 203.0.113.10 or 203.0.113.8/29.",
    )
    use_case = forms.ChoiceField(
        label="What will send mail from these addresses?",
        choices=UseCase.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    justification = forms.CharField(
        label="Why won't port 587 or a relay service do?",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    mail_software = forms.CharField(
        label="Mail server software",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Postfix 3.8"}),
    )
    sending_domains = forms.CharField(
        label="Sending domains",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="The domains in your From: addresses, one per line.",
    )
    expected_daily_volume = forms.IntegerField(label="Expected messages per day", required=False)
    bounce_handling = forms.CharField(
        label="How do you handle bounces and complaints?",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    abuse_contact = forms.CharField(
        label="Abuse contact",
        required=False,
        max_length=254,
        help_text="An address that is read within 24 hours; abuse reports about these addresses go there.",
        widget=forms.EmailInput(),
    )
    accept_aup = forms.BooleanField(
        label="I accept the acceptable-use policy and will act on abuse reports within 24 hours.",
        required=False,
    )

    def __init__(
        self,
        *args: Any,
        tenants: Any,
        submitting: bool = False,
        editing: UnblockRequest | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.submitting = submitting
        self.editing = editing
        tenant_field = self.fields["tenant"]
        assert isinstance(tenant_field, forms.ModelChoiceField)
        tenant_field.queryset = tenants
        if editing is not None or tenants.count() == 1:
            tenant_field.widget = forms.HiddenInput()

    def enable_live_validation(self, url: str) -> None:
        """Ask htmx to post the form as the customer types and show that field's feedback."""
        for name, field in self.fields.items():
            if name in ("tenant", "use_case", "accept_aup"):
                continue
            field.widget.attrs.update(
                {
                    "hx-post": url,
                    "hx-trigger": "input changed delay:400ms, blur changed",
                    "hx-target": f"#feedback-{name}",
                    "hx-swap": "outerHTML",
                    "hx-include": "#request-form",
                    "aria-describedby": f"help-{name} feedback-{name}",
                }
            )

    def clean_use_case(self) -> str:
        return rules.clean_use_case(self.cleaned_data["use_case"])

    def clean_justification(self) -> str:
        return rules.clean_text(self.cleaned_data["justification"], "The justification")

    def clean_bounce_handling(self) -> str:
        return rules.clean_text(self.cleaned_data["bounce_handling"], "The description")

    def clean_sending_domains(self) -> list[str]:
        return rules.clean_domains(rules.split_entries(self.cleaned_data["sending_domains"]))

    def clean_expected_daily_volume(self) -> int | None:
        return rules.clean_volume(self.cleaned_data["expected_daily_volume"])

    def clean_abuse_contact(self) -> str:
        return rules.clean_abuse_contact(self.cleaned_data["abuse_contact"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant = cleaned.get("tenant")
        if tenant is not None and "addresses" in cleaned:
            entries = rules.split_entries(cleaned["addresses"])
            try:
                grantable.clean_addresses(entries, tenant=tenant, editing=self.editing)
            except ValidationError as exc:
                self.add_error("addresses", exc)
            else:
                cleaned["addresses"] = entries
        if self.submitting:
            # Every problem at once: a blank field is reported next to the invalid ones, not on
            # the next submit. A field that is already wrong isn't also called missing.
            for name, message in rules.missing_for_submit(self.to_data()).items():
                if name not in self.errors:
                    self.add_error(name, message)
        return cleaned

    def error_summary(self) -> list[tuple[str, str]]:
        """(id of the input to focus, message) for every error, in the order of the fields."""
        summary: list[tuple[str, str]] = [("request-form", str(e)) for e in self.non_field_errors()]
        for name in self.fields:
            if name in self.errors:
                anchor = f"{self[name].auto_id}_0" if name == "use_case" else self[name].auto_id
                summary.extend((anchor, str(message)) for message in self.errors[name])
        return summary

    def to_data(self) -> rules.RequestData:
        c = self.cleaned_data
        return rules.RequestData(
            addresses=c.get("addresses") or [],
            use_case=c.get("use_case", ""),
            justification=c.get("justification", ""),
            mail_software=c.get("mail_software", "").strip(),
            sending_domains=c.get("sending_domains") or [],
            expected_daily_volume=c.get("expected_daily_volume"),
            bounce_handling=c.get("bounce_handling", ""),
            abuse_contact=c.get("abuse_contact", ""),
            accept_aup=bool(c.get("accept_aup")),
        )

    @classmethod
    def initial_from(cls, req: UnblockRequest) -> dict[str, Any]:
        return {
            "tenant": req.tenant_id,
            "addresses": "\n".join(b.cidr for b in req.blocks.all()),
            "use_case": req.use_case,
            "justification": req.justification,
            "mail_software": req.mail_software,
            "sending_domains": "\n".join(req.sending_domains),
            "expected_daily_volume": req.expected_daily_volume,
            "bounce_handling": req.bounce_handling,
            "abuse_contact": req.abuse_contact,
            "accept_aup": req.aup_accepted_at is not None,
        }


class AnswerForm(forms.Form):
    text = forms.CharField(
        label="Your answer",
        max_length=rules.TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={
            "required": "Write your answer to the reviewer's question above: give the details they "
            "asked for, or say what you changed.",
            "max_length": f"Shorten your answer to {rules.TEXT_LIMIT} characters or fewer.",
        },
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(label="Reason (optional)", max_length=rules.TEXT_LIMIT, required=False)
