"""POST /api/v1/telemetry/smtp: port-25 counts from enforcement agents and flow forwarders."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.json import strict_constant

from portal.accounts.api_auth import EnforcementScope, api_key_of
from portal.ops.parsers import PayloadTooLarge, body_limit, too_large_detail
from portal.telemetry.serializers import ReceiptSerializer, ReportSerializer
from portal.workflows.telemetry import ingest_report


class UnsupportedEncoding(exceptions.APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_encoding"


class TelemetryParser(JSONParser):
    """JSON, gzip-compressed or not, inflated to at most TELEMETRY_MAX_BYTES.

    A report of 100,000 addresses is ~5 MB of JSON and about ten times smaller compressed; a crafted gzip
    body inflates a thousandfold, so it is inflated in steps and refused once over the limit
    (a zip bomb costs the limit, not the memory).
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        request = (parser_context or {}).get("request")
        encoding = (request.META.get("HTTP_CONTENT_ENCODING", "") if request else "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip"):
            raise UnsupportedEncoding(
                f"Content-Encoding {encoding!r} is not supported; send gzip or an uncompressed body."
            )
        limit = body_limit()
        raw = stream.read(limit + 1) if limit else stream.read()
        if limit and len(raw) > limit:
            raise PayloadTooLarge(too_large_detail())
        body = _gunzip(raw) if encoding in ("gzip", "x-gzip") else raw
        if len(body) > settings.TELEMETRY_MAX_BYTES:
            raise PayloadTooLarge(_inflated_too_large())
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(
                f"The body is not valid UTF-8 JSON: {exc.reason} at byte {exc.start}."
            ) from None
        # No bracket count first (BoundedJSONParser's): on a 5 MB report it costs more than the
        # parse, and a body nested too deep still ends as a RecursionError caught here.
        try:
            return json.loads(text, parse_constant=strict_constant)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body nests too deep.") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


def _gunzip(raw: bytes) -> bytes:
    limit = settings.TELEMETRY_MAX_BYTES
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
        if len(body) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(_inflated_too_large())
        body += inflater.flush()
    except zlib.error as exc:
        raise exceptions.ParseError(
            f"The body is not valid gzip ({exc}); compress it with gzip or drop Content-Encoding."
        ) from None
    if not inflater.eof:
        raise exceptions.ParseError("The gzip body is truncated; send the whole compressed report.")
    return body


def _inflated_too_large() -> str:
    return (
        f"The report is larger than {settings.TELEMETRY_MAX_BYTES:,} bytes uncompressed; "
        "send fewer addresses per report."
    )


@extend_schema(
    request=ReportSerializer,
    parameters=[
        OpenApiParameter(
            "Content-Encoding",
            str,
            OpenApiParameter.HEADER,
            enum=["gzip", "identity"],
            required=False,
            description="gzip is recommended; the inflated body may be at most 16 MB by default.",
        )
    ],
    responses={
        202: ReceiptSerializer,
        200: OpenApiResponse(ReceiptSerializer, description="A duplicate: nothing was counted again."),
        400: OpenApiResponse(description="A field is wrong; the body names it and says how to fix it."),
        413: OpenApiResponse(description="The body is too large, compressed or inflated."),
    },
)
@api_view(["POST"])
@parser_classes([TelemetryParser])
@permission_classes([EnforcementScope])
def smtp_report(request: Request) -> Response:
    """Port-25 connection counts per source address for one interval, from an enforcement agent
    (nftables) or a flow forwarder (pmacct). Idempotent by agent and sequence."""
    serializer = ReportSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    outcome = ingest_report(report=serializer.to_spec(), api_key=api_key_of(request))
    receipt = {
        "sequence": outcome.sequence,
        "duplicate": outcome.duplicate,
        "addresses": outcome.addresses,
        "last_sequence": outcome.last_sequence,
        "signals": len(outcome.signals),
    }
    return Response(receipt, status=status.HTTP_200_OK if outcome.duplicate else status.HTTP_202_ACCEPTED)
