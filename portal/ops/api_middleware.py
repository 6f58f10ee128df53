"""Every answer under /api/ is JSON, errors included, whatever the request looked like."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

from portal.ops.parsers import body_limit, too_large_detail

API_PREFIX = "/api/"


class ApiErrorMiddleware:
    """Answers an oversized body with 413 before anything reads it, and turns the HTML error
    pages Django renders outside DRF (an unknown URL, a body refused while a middleware read it,
    the DEBUG error page) into the API's JSON error shape.

    It goes first in MIDDLEWARE so that it wraps every other middleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if nul := next(
            (name for name, value in request.GET.lists() if "\x00" in name + "".join(value)), None
        ):
            # PostgreSQL refuses NUL in text, so a query would fail deep inside a view.
            return JsonResponse(
                {nul.replace("\x00", "") or "query": ["Remove the NUL character (%00) from this parameter."]},
                status=400,
            )
        limit = body_limit()
        if limit and _content_length(request) > limit:
            # Django would raise RequestDataTooBig only when something reads the body, and answer
            # with its HTML 400 page (the DEBUG page, settings and all, in development).
            return JsonResponse({"detail": too_large_detail()}, status=413)
        response = self.get_response(request)
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("text/html"):
            converted = HttpResponse(
                json.dumps({"detail": f"{_reason(response.status_code)}."}),
                status=response.status_code,
                content_type="application/json",
            )
            for header in ("WWW-Authenticate", "Retry-After", "Allow", "X-Request-ID"):
                if header in response:
                    converted[header] = response[header]
            return converted
        return response


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
