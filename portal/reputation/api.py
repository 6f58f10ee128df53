from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.api_auth import ProvisioningScope, actor_of
from portal.reputation.arf import MAX_REPORT_BYTES, ArfError
from portal.reputation.serializers import EventInputSerializer, EventSerializer
from portal.workflows.reputation import ingest_arf, ingest_event


class RawMessageParser(BaseParser):
    """Takes the body as bytes: an ARF report is a MIME message, not JSON."""

    media_type = "message/rfc822"

    def parse(  # type: ignore[override]
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        data: bytes = stream.read(MAX_REPORT_BYTES + 1) if stream else b""
        return data


@extend_schema(request=EventInputSerializer, responses={201: EventSerializer})
@api_view(["POST"])
@permission_classes([ProvisioningScope])
def event_create(request: Request) -> Response:
    """Record a reputation event from the abuse desk or a feed (listing, complaint, note)."""
    serializer = EventInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    event = ingest_event(spec=serializer.to_spec(), actor=actor_of(request))
    return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)


@extend_schema(request={"message/rfc822": OpenApiTypes.BINARY}, responses={201: EventSerializer})
@api_view(["POST"])
@parser_classes([RawMessageParser])
@permission_classes([ProvisioningScope])
def arf_create(request: Request) -> Response:
    """Upload one abuse report in ARF (RFC 5965) as the raw message, Content-Type: message/rfc822."""
    raw = request.data
    if not isinstance(raw, bytes) or not raw:
        raise serializers.ValidationError({"report": ["Send the raw ARF message as the request body."]})
    try:
        event = ingest_arf(raw=raw, actor=actor_of(request))
    except ArfError as exc:
        raise serializers.ValidationError({"report": [str(exc)]}) from None
    return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)
