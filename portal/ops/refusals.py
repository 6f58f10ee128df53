"""What HTTP says when a domain rule refuses a person's action, in one table.

The API exception handler turns a refusal into a JSON error with this status; pages show its
message, either on the page again (with the status) or after a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from portal.review.policy import DecisionRefused
from portal.unblock.models import IllegalTransition
from portal.workflows.exemptions import ExemptionConflict

STATUS: dict[type[Exception], int] = {
    # The person may not: a role, separation of duties, four-eyes. Another person may.
    DecisionRefused: 403,
    # The object changed state first (another decision won); reloading shows what happened.
    IllegalTransition: 409,
    ExemptionConflict: 409,
}
REFUSALS = tuple(STATUS)


def status_of(exc: Exception) -> int:
    return next(status for kind, status in STATUS.items() if isinstance(exc, kind))


def refused(request: HttpRequest, exc: Exception) -> int:
    """Tell the person why (an error message on the page they see next); return the status."""
    messages.error(request, str(exc))
    return status_of(exc)


def refusals_redirect(
    to: str, **url_kwargs: str
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """For views that act and then redirect: a refusal is an error message and a redirect to `to`.

    `url_kwargs` name the view arguments that fill the URL (`request_id="request_id"`).
    """

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return view(request, *args, **kwargs)
            except REFUSALS as exc:
                refused(request, exc)
                back: HttpResponseBase = redirect(
                    to, **{name: kwargs[arg] for name, arg in url_kwargs.items()}
                )
                return back

        return wrapper

    return decorator
