from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import Tenant, TenantQuerySet
from portal.accounts.sso import configured, local_login_allowed
from portal.accounts.two_factor import (
    TokenRefused,
    check_recovery_code,
    check_token,
    looks_like_recovery_code,
)


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

    def __init__(self, *args: Any, device: TOTPDevice, accept_recovery: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device: Device = device
        self.accept_recovery = accept_recovery
        self.used_recovery_code = False

    def clean_token(self) -> str:
        # Apps show the code as "123 456"; people type it that way too.
        token = "".join(self.cleaned_data["token"].split())
        try:
            if self.accept_recovery and looks_like_recovery_code(token):
                self.device = check_recovery_code(self.device.user, token)
                self.used_recovery_code = True
            else:
                assert isinstance(self.device, TOTPDevice)
                self.device = check_token(self.device, token)
        except TokenRefused as refused:
            raise forms.ValidationError(str(refused), code="refused") from None
        return token


class SignInForm(AuthenticationForm):
    """The password step, refused before any password check when LOCAL_LOGIN is off (except for
    the break-glass admin), so that a password can't be tried for anyone else."""

    # People sign in with their email; Django's message would call it a "username".
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don't match an account. Check both and try again; "
        "the password is case-sensitive.",
    }

    def clean(self) -> dict[str, Any]:
        if not local_login_allowed(self.data.get("username", "")):
            names = " or ".join(p.name for p in configured()) or "single sign-on"
            raise forms.ValidationError(
                f"Passwords are turned off here: use “Sign in with {names}”.", code="local_login_off"
            )
        return super().clean()
