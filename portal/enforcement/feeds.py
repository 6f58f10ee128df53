"""Pull feeds for enforcement systems: the active set as text (Palo Alto EDL, FortiGate threat
feed) and JSON, and the change feed for incremental sync.

Every response carries a strong ETag derived from the feed's latest sequence number, read
before the body: a conditional request is answered with 304 after one indexed query, without
building the body, and a body is never older than the ETag it is sent with.
"""

from __future__ import annotations

import gzip
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from threading import Lock

from django.db import connection
from django.db.models import F, Max, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from portal.accounts.api_auth import EnforcementScope
from portal.core.metrics import count
from portal.enforcement.changes import pruned_through
from portal.enforcement.models import Exemption, FeedChange

MAX_CHANGES = 5000
# One exemption of the JSON feed, as json.dumps(..., separators=(",", ":")) writes it, formatted
# directly: a cold build of 100,000 is ~30% faster than through dicts and json.dumps. Only the
# tenant's external id can need escaping (it goes through json.dumps); the rest are UUIDs, a
# block as ipaddress writes it, an integer and an ISO 8601 time.
_JSON_ITEM = (
    '{"id":"%s","tenant":%s,"block":"%s","family":%d,"ports":[25],"state":"active",'
    '"expires_at":%s,"request":%s}'
)
_bodies: OrderedDict[str, bytes] = OrderedDict()
_bodies_lock = Lock()


class PassthroughRenderer(BaseRenderer):
    """The views build their own bytes; this only lets DRF negotiate any Accept header."""

    media_type = "*/*"
    format = "txt"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: object = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        # An error (DRF's dict): JSON like every other API error, not "*/*".
        if isinstance(renderer_context, dict) and "response" in renderer_context:
            renderer_context["response"]["Content-Type"] = "application/json"
        return json.dumps(data).encode()


def feed_state() -> tuple[int, datetime | None]:
    state = FeedChange.objects.aggregate(seq=Max("seq"), at=Max("at"))
    return state["seq"] or 0, state["at"]


def _version(seq: int, at: datetime | None) -> str:
    # The time of the latest change makes the version unique even when the sequence starts over
    # (a database restored from a backup): no stale body or 304 survives that.
    return f"{seq}.{int(at.timestamp() * 1_000_000) if at else 0}"


def _uuid_text(field: str) -> Cast | F:
    # PostgreSQL renders a UUID as text several times faster than the driver builds uuid.UUID
    # objects for Python to format; elsewhere the UUID object formats itself.
    return Cast(field, TextField()) if connection.vendor == "postgresql" else F(field)


def _not_modified(request: HttpRequest, etags: tuple[str, ...], last_modified: datetime | None) -> str | bool:
    """False, or the validator that matched: the tag the client holds, or True (any of ours)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x". A proxy that compresses the body
        # (nginx with gzip on) weakens the tag it passes on, and the client sends that one back.
        offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return next((tag for tag in etags if tag in offered), False) or "*" in offered
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    return since is not None and last_modified is not None and int(last_modified.timestamp()) <= since


def _respond(
    request: HttpRequest,
    key: str,
    last_modified: datetime | None,
    content_type: str,
    build: Callable[[], bytes],
) -> HttpResponse:
    """Serve the body for `key` (built once per process and key), gzipped when accepted."""
    plain_tag, gzip_tag = f'"{key}"', f'"{key}-gz"'
    wants_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    if matched := _not_modified(request, (plain_tag, gzip_tag), last_modified):
        count("feed_requests", result="not_modified")
        response: HttpResponse = HttpResponseNotModified()
        # The ETag a 200 would carry: a client that stores a different one from a 304 is out of
        # step. Small bodies go uncompressed, so wanting gzip doesn't settle it; the tag the
        # client holds does, else the body's size (built once per process and version).
        if isinstance(matched, str):
            response["ETag"] = matched
        else:
            response["ETag"] = gzip_tag if wants_gzip and len(_cached(key, build)) > 1024 else plain_tag
    else:
        body = _cached(key, build)
        use_gzip = wants_gzip and len(body) > 1024
        if use_gzip:
            body = _cached(key + "-gz", lambda: gzip.compress(_cached(key, build), 6))
        response = HttpResponse(body, content_type=content_type)
        response["ETag"] = gzip_tag if use_gzip else plain_tag
        if use_gzip:
            response["Content-Encoding"] = "gzip"
        count("feed_requests", result="full")
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified.timestamp())
    response["Vary"] = "Accept-Encoding, Authorization"
    response["Cache-Control"] = "private, no-cache"
    return response


def _cached(key: str, build: Callable[[], bytes]) -> bytes:
    with _bodies_lock:
        if key in _bodies:
            _bodies.move_to_end(key)
            return _bodies[key]
    body = build()
    with _bodies_lock:
        _bodies[key] = body
        while len(_bodies) > 16:
            _bodies.popitem(last=False)
    return body


def _family(request: Request) -> int | None:
    value = request.query_params.get("family", "")
    if value not in ("", "4", "6"):
        raise serializers.ValidationError({"family": ["Use family=4 or family=6, or leave it out for both."]})
    return int(value) if value else None


def _active(family: int | None):  # type: ignore[no-untyped-def]
    queryset = Exemption.objects.active().order_by("family", "first")
    return queryset.filter(family=family) if family else queryset


@extend_schema(
    parameters=[OpenApiParameter("family", OpenApiTypes.INT, enum=[4, 6], required=False)],
    responses={(200, "text/plain"): OpenApiTypes.STR, 304: None},
)
@api_view(["GET"])
@permission_classes([EnforcementScope])
@renderer_classes([PassthroughRenderer])
def exemptions_txt(request: Request) -> HttpResponse:
    """The active set, one address or CIDR block per line (Palo Alto EDL, FortiGate threat feed)."""
    family = _family(request)
    seq, at = feed_state()

    def build() -> bytes:
        lines = _active(family).values_list("cidr", flat=True)
        return "".join(f"{cidr}\n" for cidr in lines).encode()

    return _respond(
        request, f"txt-{family or 'all'}-{_version(seq, at)}", at, "text/plain; charset=utf-8", build
    )


@extend_schema(
    parameters=[OpenApiParameter("family", OpenApiTypes.INT, enum=[4, 6], required=False)],
    responses={200: OpenApiTypes.OBJECT, 304: None},
)
@api_view(["GET"])
@permission_classes([EnforcementScope])
@renderer_classes([PassthroughRenderer])
def exemptions_json(request: Request) -> HttpResponse:
    """The active set with ids, tenants and expiry, and the feed cursor it reflects."""
    family = _family(request)
    seq, at = feed_state()

    def build() -> bytes:
        rows = (
            _active(family)
            .annotate(id_text=_uuid_text("id"), request_text=_uuid_text("request_id"))
            .values_list("id_text", "tenant__external_id", "cidr", "family", "expires_at", "request_text")
        )
        tenants: dict[str, str] = {}  # each tenant's id, JSON-encoded once
        items = [
            _JSON_ITEM
            % (
                id_,
                tenants.get(tenant) or tenants.setdefault(tenant, json.dumps(tenant)),
                cidr,
                fam,
                f'"{expires.isoformat()}"' if expires else "null",
                f'"{req}"' if req else "null",
            )
            for id_, tenant, cidr, fam, expires, req in rows
        ]
        return f'{{"cursor":{seq},"count":{len(items)},"exemptions":[{",".join(items)}]}}'.encode()

    return _respond(request, f"json-{family or 'all'}-{_version(seq, at)}", at, "application/json", build)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "after",
            {"type": "integer", "minimum": 0},
            required=True,
            description="The cursor you hold (0 at first).",
        ),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_CHANGES, "default": 1000},
            required=False,
            description=f"At most {MAX_CHANGES} changes per page.",
        ),
    ],
    responses={200: OpenApiTypes.OBJECT, 304: None},
)
@api_view(["GET"])
@permission_classes([EnforcementScope])
@renderer_classes([PassthroughRenderer])
def changes(request: Request) -> HttpResponse:
    """Changes of the active set after a cursor, in order: add/remove with the exemption.

    `reset: true` means the feed can't continue from this cursor: it is ahead of the feed (the
    portal was restored from a backup), or behind the changes retention keeps
    (FEED_RETENTION_DAYS). Take a fresh snapshot from exemptions.json and continue from its cursor.
    """
    after_text = request.query_params.get("after", "")
    limit_text = request.query_params.get("limit", "1000")
    errors: dict[str, list[str]] = {}
    if not (after_text.isascii() and after_text.isdigit()):
        errors["after"] = ["Give after=<cursor> as a whole number, 0 or more (0 to start)."]
    if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= MAX_CHANGES):
        errors["limit"] = [f"Give limit as a whole number from 1 to {MAX_CHANGES}."]
    if errors:
        raise serializers.ValidationError(errors)
    after, limit = int(after_text), int(limit_text)
    seq, at = feed_state()
    # Changes up to pruned_through() may be gone: a cursor below it would skip some.
    behind = after < pruned_through()

    def build() -> bytes:
        rows = list(
            FeedChange.objects.filter(seq__gt=after, seq__lte=seq)
            .order_by("seq")
            .values_list("seq", "op", "event", "exemption_id", "cidr", "family", "tenant_external_id", "at")[
                :limit
            ]
        )
        # Asked again after reading the rows: retention may have removed some of them meanwhile.
        gap = behind or after < pruned_through()
        if gap:
            rows = []
        items = [
            {
                "seq": s,
                "op": op,
                "event": ev,
                "exemption": str(ex),
                "block": cidr,
                "family": fam,
                "tenant": tenant,
                "at": when.isoformat(),
            }
            for s, op, ev, ex, cidr, fam, tenant, when in rows
        ]
        cursor: int = rows[-1][0] if rows else after
        payload = {
            "changes": items,
            "cursor": cursor,
            "latest": seq,
            "has_more": cursor < seq,
            "reset": after > seq or gap,
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    # Pruning doesn't move the feed's version, so the tag must say whether this cursor is behind.
    key = f"changes-{after}-{limit}-{_version(seq, at)}{'-behind' if behind else ''}"
    return _respond(request, key, at, "application/json", build)
