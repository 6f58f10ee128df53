from __future__ import annotations

from typing import Any

from django import forms
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import Tenant, TenantQuerySet
from portal.accounts.two_factor import TokenRefused, check_token


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this key, e.g. “deploy pipeline”.",
        widget=forms.TextInput(attrs={"placeholder": "deploy pipeline"}),
    )
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), empty_label=None)

    def __init__(self, *args: Any, tenants: TenantQuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["tenant"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = tenants
        if tenants.count() == 1:
            field.initial = tenants.first()
            field.widget = forms.HiddenInput()


class TokenForm(forms.Form):
    """A code from the person's authenticator app, checked against their device when cleaned."""

    token = forms.CharField(label="Code", max_length=16)

    def __init__(self, *args: Any, device: TOTPDevice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = device

    def clean_token(self) -> str:
        # Apps show the code as "123 456"; people type it that way too.
        token = "".join(self.cleaned_data["token"].split())
        try:
            self.device = check_token(self.device, token)
        except TokenRefused as refused:
            raise forms.ValidationError(str(refused), code="refused") from None
        return token
