"""Serializer fields that take only the JSON type the OpenAPI document names.

DRF's own fields coerce: BooleanField takes 0, 1 and "yes", CharField takes 0 and turns it into
"0", IntegerField takes "12". A script that sends the wrong type has a bug, and quietly reading
`"submit": 0` as a draft hides it; the schema (and schemathesis) says they are refused.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string (in double quotes)."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a whole number (a JSON number, not a string)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPageSize(CursorPagination):
    """A page_size that is not a whole number in range is refused, not replaced by the default."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int | None:
        value = request.query_params.get("page_size")
        if value is None:
            return self.page_size
        limit = self.max_page_size or 0
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= limit):
            raise ValidationError({"page_size": [f"Give page_size as a whole number from 1 to {limit}."]})
        return int(value)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "page_size":
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters
