from __future__ import annotations

from typing import Any

from django import forms

from portal.enforcement.models import EVENT_TYPES, WebhookEndpoint
from portal.enforcement.webhooks import policy
from portal.lib import outbound


def validate_endpoint_url(url: str) -> None:
    """Refuse URLs the transport would refuse anyway, with the same explanation."""
    try:
        scheme, host, port, _ = outbound.check_url(url, policy())
        outbound.resolve(host, port, scheme, policy())
    except outbound.TransportError as exc:
        raise forms.ValidationError(str(exc)) from None


class EndpointForm(forms.ModelForm[WebhookEndpoint]):
    event_types = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        validate_endpoint_url(url)
        return url

    def clean(self) -> dict[str, Any]:
        return super().clean() or {}


class RedeliverRangeForm(forms.Form):
    since = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] > cleaned["until"]:
            raise forms.ValidationError("“Since” must be before “until”.")
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
