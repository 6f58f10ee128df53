from __future__ import annotations

from typing import Any

from django import forms

from portal.lib.ipblocks import BlockError, Network, parse_block
from portal.reputation.arf import MAX_REPORT_BYTES
from portal.reputation.models import Kind, Source


class HistoryFilterForm(forms.Form):
    source = forms.ChoiceField(choices=[("", "All sources"), *Source.choices], required=False)
    kind = forms.ChoiceField(choices=[("", "All kinds"), *Kind.choices], required=False)


class LookupForm(forms.Form):
    q = forms.CharField(
        label="Address, block or tenant",
        max_length=100,
        widget=forms.TextInput(
            attrs={"placeholder": "203.0.113.9, 203.0.113.8/29, or a tenant's name or id"}
        ),
    )


class ArfUploadForm(forms.Form):
    report = forms.FileField(
        label="Abuse report (ARF, RFC 5965)",
        help_text="The report exactly as received: a .eml file of type multipart/report.",
    )

    def clean_report(self) -> bytes:
        upload = self.cleaned_data["report"]
        if upload.size > MAX_REPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_REPORT_BYTES:,} bytes.")
        data: bytes = upload.read()
        return data


class NoteForm(forms.Form):
    address = forms.CharField(max_length=64, required=False)
    summary = forms.CharField(label="Note", max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_address(self) -> Network | None:
        value: str = self.cleaned_data["address"].strip()
        if not value:
            return None
        try:
            return parse_block(value)
        except BlockError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        return super().clean() or {}
