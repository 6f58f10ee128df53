"""API conventions shared by every endpoint: one error shape, Django and domain errors mapped to HTTP."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.ops.refusals import REFUSALS, status_of


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object changed state; reload it and try again."
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, REFUSALS):
        exc = Conflict(str(exc)) if status_of(exc) == 409 else exceptions.PermissionDenied(str(exc))
    elif isinstance(exc, DjangoValidationError):
        # Always an object: field errors by name, the rest under non_field_errors (DRF's shape).
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        # Django's message names the model; the API says only that there is no such object here.
        exc = exceptions.NotFound("Not found.")
    return drf_exception_handler(exc, context)
