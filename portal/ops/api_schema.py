"""The error answers every API operation can give, added to the OpenAPI document in one place.

drf-spectacular documents what a view declares; authentication, scopes, throttling, missing
objects and state conflicts are answered by DRF and the exception handler for every view alike,
so they are added here rather than repeated on each view.
"""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
FIELD_ERRORS = {"$ref": "#/components/schemas/FieldErrors"}

DESCRIPTIONS = {
    "400": "The input is wrong: field errors by name, or `detail` for a body that is not JSON.",
    "401": "No key, a malformed Authorization header, or an unknown or revoked key.",
    "403": "The key's scope (or the person it acts for) does not allow this operation.",
    "404": "No such object for this key (or a page cursor the portal did not give).",
    "409": "The object is not in a state that allows this action (it changed a moment ago).",
    "413": "The request body is larger than the portal accepts.",
    "429": "Too many requests; wait for the seconds in Retry-After.",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    }
    schemas["FieldErrors"] = {
        "type": "object",
        "description": "Each wrong field's messages under its name; `non_field_errors` for the whole.",
        "additionalProperties": True,
    }
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            # 404 on lists too: DRF answers a cursor the portal did not give with 404.
            codes = ["400", "401", "403", "404", "429"]
            if method in ("post", "put", "patch", "delete"):
                codes += ["409", "413"]
            responses = operation.setdefault("responses", {})
            for code in codes:
                existing = responses.get(code)
                if existing is not None and "content" in existing:
                    continue
                description = (existing or {}).get("description") or DESCRIPTIONS[code]
                schema = FIELD_ERRORS if code == "400" else ERROR
                response: dict[str, Any] = {
                    "description": description,
                    "content": {"application/json": {"schema": schema}},
                }
                if code == "429":
                    response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
                if code == "401":
                    response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
                responses[code] = response
    return result
