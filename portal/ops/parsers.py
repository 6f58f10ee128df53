"""The JSON parser every API endpoint uses: bounded in size and in nesting depth."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

# No request body the API defines nests deeper than 4; a generous bound still refuses a body
# nested thousands deep, which makes Python's decoder raise RecursionError (a 500) instead.
MAX_JSON_DEPTH = 64

# A JSON string (skipped: brackets inside it don't nest) or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def body_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def too_large_detail() -> str:
    return f"The request body is larger than {body_limit():,} bytes; send less in one call."


def nesting_depth(text: str) -> int:
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        opening = text[match.start()]
        if opening in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif opening in "]}":
            depth -= 1
    return deepest


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, refusing bodies over DATA_UPLOAD_MAX_MEMORY_SIZE and deep nesting.

    DRF reads the body from the request stream, which skips Django's own size check when nothing
    read the body before: the size is checked here as well.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = str((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        try:
            # A text codec only: bytes-to-bytes ones (bz2_codec) would inflate the body past the limit.
            "".encode(encoding)
        except (LookupError, UnicodeError):
            raise exceptions.ParseError(
                f'Unsupported charset "{encoding}" in the Content-Type header.'
            ) from None
        limit = body_limit()
        raw = stream.read(limit + 1) if limit else stream.read()
        if limit and len(raw) > limit:
            raise PayloadTooLarge(too_large_detail())
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(
                f"JSON parse error - the body is not valid {encoding}: {exc.reason} at byte {exc.start}."
            ) from None
        # Counting brackets first is cheap; the full scan runs only when they could nest too deep.
        if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_depth(text) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(
                "JSON parse error - the body nests arrays and objects more than "
                f"{MAX_JSON_DEPTH} levels deep."
            )
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
