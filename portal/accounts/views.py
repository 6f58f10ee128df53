from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.forms import ApiKeyForm
from portal.accounts.models import Actor, ApiKey, Scope, Tenant
from portal.audit.log import record


def user_of(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _get_key_for_customer(request: HttpRequest, key_id: UUID) -> ApiKey:
    keys = ApiKey.objects.filter(scope=Scope.CUSTOMER, tenant__in=Tenant.objects.for_user(request.user))
    return get_object_or_404(keys.select_related("tenant"), pk=key_id)


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    tenants = Tenant.objects.for_user(request.user)
    if not tenants.exists():
        raise Http404("API keys here are for tenant members.")
    new_key = ""
    form = ApiKeyForm(request.POST or None, tenants=tenants)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic(durable=True):
            api_key, new_key = ApiKey.issue(
                name=form.cleaned_data["name"],
                scope=Scope.CUSTOMER,
                tenant=form.cleaned_data["tenant"],
                created_by=user_of(request),
            )
            record(
                actor=Actor(user=user_of(request)),
                action="api_key.created",
                obj=api_key,
                tenant_id=api_key.tenant_id,
            )
        form = ApiKeyForm(tenants=tenants)
    keys = ApiKey.objects.filter(scope=Scope.CUSTOMER, tenant__in=tenants).select_related(
        "tenant", "created_by"
    )
    response = render(request, "accounts/api_keys.html", {"form": form, "keys": keys, "new_key": new_key})
    # The new key is in this page only: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def api_key_revoke(request: HttpRequest, key_id: UUID) -> HttpResponse:
    api_key = _get_key_for_customer(request, key_id)
    if api_key.is_revoked:
        messages.info(request, f"{api_key.name} was already revoked.")
    else:
        with transaction.atomic(durable=True):
            api_key.revoke()
            record(
                actor=Actor(user=user_of(request)),
                action="api_key.revoked",
                obj=api_key,
                tenant_id=api_key.tenant_id,
            )
        messages.success(request, f"{api_key.name} is revoked; requests with it are now refused.")
    return redirect("accounts:api_keys")
