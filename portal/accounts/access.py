from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from portal.accounts.models import is_staff_member
from portal.accounts.two_factor import staff_gate


def staff_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Staff pages: anonymous users go to the login page, everyone else without a role gets 404.

    When REQUIRE_STAFF_2FA is on, staff whose session hasn't passed the code step go to it first
    (or to setting up an authenticator app, if they have none).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_staff_member(request.user):
            raise Http404("Not found")
        gate = staff_gate(request, request.get_full_path())
        if gate is not None:
            return HttpResponseClientRedirect(gate) if getattr(request, "htmx", False) else redirect(gate)
        return view(request, *args, **kwargs)

    return wrapper
