from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from portal.accounts import two_factor


class PortalAdminSite(admin.AdminSite):
    """The admin, entered through the portal's own sign-in so that its code step can't be skipped,
    and behind the same two-factor requirement as the other staff pages."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and two_factor.staff_gate_passed(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated:
            return redirect_to_login(next_url)
        gate = two_factor.staff_gate(request, next_url)
        if gate is not None:
            return redirect(gate)
        # Signed in but not admin staff: like every other staff page, there is nothing here.
        raise Http404("Not found")
