from __future__ import annotations

from typing import Any

from django import forms

from portal.accounts.models import Tenant, TenantQuerySet


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
