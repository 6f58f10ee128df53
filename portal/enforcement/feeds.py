"""Pull feeds for enforcement systems: the active set as text (Palo Alto EDL, FortiGate threat
feed) and JSON, and the change feed for incremental sync.

Every response carries a strong ETag derived from the feed's version (its latest sequence
number and time), read before anything else: with a key verified in the last second, a
conditional request is answered with 304 after that one indexed query. The snapshots are files
a worker built once per version (artifacts.py); these views send them and build nothing. Until
the worker has built the current version (it is woken in the transaction that moved the feed,
so that is a moment), a snapshot is streamed from the database without being kept: a web
process never waits on the worker nor serves an older list than the feed, and holds no body.

The views are plain Django views, not DRF's: the hot path is one key look-up in memory and one
query. DRF views of the same name describe them to the OpenAPI schema.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from itertools import chain
from typing import Any, TypeVar

from django.conf import settings
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from portal.accounts.api_auth import EnforcementScope, enforcement_key, remembered_enforcement_key
from portal.core.metrics import count_soon
from portal.core.wakeup import notify_workers
from portal.enforcement import artifacts
from portal.enforcement.changes import pruned_through
from portal.enforcement.models import FeedChange

MAX_CHANGES = 5000
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


class PassthroughRenderer(BaseRenderer):
    """The views build their own bytes; this only lets DRF negotiate any Accept header."""

    media_type = "*/*"
    format = "txt"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: object = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(renderer_context, dict) and "response" in renderer_context:
            renderer_context["response"]["Content-Type"] = "application/json"
        return json.dumps(data).encode()


def feed_view(documented_by: Callable[..., Any]) -> Callable[[View], View]:
    """A plain view that answers DRF's way for errors (the API's JSON shape, WWW-Authenticate,
    Retry-After) and that drf-spectacular describes by `documented_by`, a DRF view never routed."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in ("GET", "HEAD"):
                return _refusal(exceptions.MethodNotAllowed(request.method or ""))
            try:
                return view(request, *args, **kwargs)
            except exceptions.APIException as exc:
                return _refusal(exc)

        # cls and initkwargs: what the schema generator reads from a DRF view function.
        wrapper.__dict__.update(documented_by.__dict__)
        return wrapper  # type: ignore[return-value]

    return decorate


def _refusal(exc: exceptions.APIException) -> HttpResponse:
    detail = exc.detail if isinstance(exc.detail, dict | list) else {"detail": exc.detail}
    response = JsonResponse(detail, status=exc.status_code, safe=False)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    if isinstance(exc, exceptions.Throttled) and (wait := getattr(exc, "wait", None)) is not None:
        response["Retry-After"] = str(int(wait))
    return response


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


def _finish(response: HttpResponseBase, etag: str, last_modified: datetime | None) -> HttpResponseBase:
    response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified.timestamp())
    response["Vary"] = "Accept-Encoding, Authorization"
    response["Cache-Control"] = "private, no-cache"
    return response


def _wants_gzip(request: HttpRequest) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


def _family(request: HttpRequest) -> str:
    value = request.GET.get("family", "")
    if value not in ("", "4", "6"):
        raise exceptions.ValidationError({"family": ["Use family=4 or family=6, or leave it out for both."]})
    return value or "all"


def _snapshot(request: HttpRequest, kind: str) -> HttpResponseBase:
    enforcement_key(request)
    name = f"{kind}-{_family(request)}"
    _, family = artifacts.FORMATS[name]
    seq, at = artifacts.served_state()
    key = f"{name}-{artifacts.version_of(seq, at)}"
    plain_tag, gzip_tag = f'"{key}"', f'"{key}-gz"'
    wants_gzip = _wants_gzip(request)
    matched = _not_modified(request, (plain_tag, gzip_tag), at)
    if isinstance(matched, str):
        count_soon("feed_requests", result="not_modified")
        return _finish(HttpResponseNotModified(), matched, at)
    built = artifacts.served(name, artifacts.version_of(seq, at))
    if matched:
        # If-Modified-Since or "*": the tag a 200 would carry depends on the body's size.
        large = built.size > artifacts.GZIP_OVER if built else _is_large(kind, family, seq)
        count_soon("feed_requests", result="not_modified")
        return _finish(HttpResponseNotModified(), gzip_tag if wants_gzip and large else plain_tag, at)
    count_soon("feed_requests", result="full")
    content_type = artifacts.CONTENT_TYPES[kind]
    if built is None:
        count_soon("feed_requests", result="streamed")
        return _streamed(kind, family, wants_gzip, content_type, plain_tag, gzip_tag, at)
    use_gzip = wants_gzip and built.size > artifacts.GZIP_OVER
    path = built.gzip_name if use_gzip else built.name
    storage = artifacts.feed_storage()
    response: HttpResponseBase
    if settings.FEED_STORAGE_REDIRECT:
        response = HttpResponseRedirect(storage.url(path))
    else:
        try:
            opened = storage.open(path, "rb")
        except FileNotFoundError:
            # The store lost the file (a wiped directory, a bucket lifecycle rule): forget the
            # artifact so that a worker builds it again, and answer from the database meanwhile.
            artifacts.forget(built)
            notify_workers()
            count_soon("feed_requests", result="streamed")
            return _streamed(kind, family, wants_gzip, content_type, plain_tag, gzip_tag, at)
        response = FileResponse(opened, content_type=content_type)
        response["Content-Length"] = str(built.gzip_size if use_gzip else built.size)
        if use_gzip:
            response["Content-Encoding"] = "gzip"
    return _finish(response, gzip_tag if use_gzip else plain_tag, at)


SNAPSHOT_PATHS = {"/api/v1/feeds/exemptions.txt": "txt", "/api/v1/feeds/exemptions.json": "json"}


def not_modified_from_memory(environ: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The headers of a 304 to a snapshot poll, if this process can answer it from memory alone:
    a key verified in the last second, the feed's version read in the last second, the client
    holding its tag. None sends the request through Django as usual.

    Called by the WSGI entry point before Django (portal/wsgi.py): a firewall's idle poll is
    the feeds' commonest request, and Django's middleware would cost it several times what the
    answer does. Nothing here reads the database or the body.
    """
    kind = SNAPSHOT_PATHS.get(environ.get("PATH_INFO", ""))
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if kind is None or if_none_match is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return None
    family = {"": "all", "family=4": "4", "family=6": "6"}.get(environ.get("QUERY_STRING", ""))
    state = artifacts.remembered_state()
    if family is None or state is None:
        return None
    if remembered_enforcement_key(environ.get("HTTP_AUTHORIZATION", "")) is None:
        return None
    key = f"{kind}-{family}-{artifacts.version_of(*state)}"
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    matched = next((tag for tag in (f'"{key}"', f'"{key}-gz"') if tag in offered), None)
    if matched is None:
        return None
    count_soon("feed_requests", result="not_modified")
    response = _finish(HttpResponseNotModified(), matched, state[1])
    return list(response.items())


def _is_large(kind: str, family: int | None, seq: int) -> bool:
    with artifacts.snapshot():
        head = 0
        for chunk in artifacts.chunks(kind, family, seq, limit=64):
            head += len(chunk)
        return head > artifacts.GZIP_OVER


def _streamed(
    kind: str,
    family: int | None,
    wants_gzip: bool,
    content_type: str,
    plain_tag: str,
    gzip_tag: str,
    at: datetime | None,
) -> HttpResponseBase:
    """The snapshot read from the database as it is sent; nothing of it is kept."""

    def body() -> Generator[bytes]:
        with artifacts.snapshot() as (seq, _):
            yield from artifacts.chunks(kind, family, seq)

    pieces = body()
    head: list[bytes] = []
    size = 0
    # Up to a chunk's worth is read first: a small body is sent whole (with its length), and a
    # large one has told by then that it is over the gzip threshold.
    for piece in pieces:
        head.append(piece)
        size += len(piece)
        if size > artifacts.CHUNK_BYTES:
            break
    else:
        whole = b"".join(head)
        use_gzip = wants_gzip and size > artifacts.GZIP_OVER
        response: HttpResponseBase = HttpResponse(
            _gzip(whole) if use_gzip else whole, content_type=content_type
        )
        if use_gzip:
            response["Content-Encoding"] = "gzip"
        return _finish(response, gzip_tag if use_gzip else plain_tag, at)
    stream = _closing(chain(head, pieces), pieces)
    response = StreamingHttpResponse(_gzipped(stream) if wants_gzip else stream, content_type=content_type)
    if wants_gzip:
        response["Content-Encoding"] = "gzip"
    # The body may be of a version newer than the tag read before it, never older.
    return _finish(response, gzip_tag if wants_gzip else plain_tag, at)


def _gzipped(pieces: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for piece in pieces:
        if out := compressor.compress(piece):
            yield out
    yield compressor.flush()


@extend_schema(
    parameters=[OpenApiParameter("family", OpenApiTypes.INT, enum=[4, 6], required=False)],
    responses={(200, "text/plain"): OpenApiTypes.STR, 304: None},
)
@api_view(["GET"])
@permission_classes([EnforcementScope])
@renderer_classes([PassthroughRenderer])
def _txt_schema(request: Request) -> HttpResponse:
    """The active set, one address or CIDR block per line (Palo Alto EDL, FortiGate threat feed)."""
    raise NotImplementedError


@extend_schema(
    parameters=[OpenApiParameter("family", OpenApiTypes.INT, enum=[4, 6], required=False)],
    responses={200: OpenApiTypes.OBJECT, 304: None},
)
@api_view(["GET"])
@permission_classes([EnforcementScope])
@renderer_classes([PassthroughRenderer])
def _json_schema(request: Request) -> HttpResponse:
    """The active set with ids, tenants and expiry, and the feed cursor it reflects."""
    raise NotImplementedError


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
def _changes_schema(request: Request) -> HttpResponse:
    """Changes of the active set after a cursor, in order: add/remove with the exemption.

    `reset: true` means the feed can't continue from this cursor: it is ahead of the feed (the
    portal was restored from a backup), or behind the changes retention keeps
    (FEED_RETENTION_DAYS). Take a fresh snapshot from exemptions.json and continue from its cursor.
    """
    raise NotImplementedError


@feed_view(documented_by=_txt_schema)
def exemptions_txt(request: HttpRequest) -> HttpResponseBase:
    return _snapshot(request, "txt")


@feed_view(documented_by=_json_schema)
def exemptions_json(request: HttpRequest) -> HttpResponseBase:
    return _snapshot(request, "json")


@feed_view(documented_by=_changes_schema)
def changes(request: HttpRequest) -> HttpResponseBase:
    enforcement_key(request)
    after_text = request.GET.get("after", "")
    limit_text = request.GET.get("limit", "1000")
    errors: dict[str, list[str]] = {}
    if not (after_text.isascii() and after_text.isdigit()):
        errors["after"] = ["Give after=<cursor> as a whole number, 0 or more (0 to start)."]
    if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= MAX_CHANGES):
        errors["limit"] = [f"Give limit as a whole number from 1 to {MAX_CHANGES}."]
    if errors:
        raise exceptions.ValidationError(errors)
    after, limit = int(after_text), int(limit_text)
    seq, at = artifacts.feed_state()
    # Changes up to pruned_through() may be gone: a cursor below it would skip some.
    behind = after < pruned_through()
    # Pruning doesn't move the feed's version, so the tag must say whether this cursor is behind.
    key = f"changes-{after}-{limit}-{artifacts.version_of(seq, at)}{'-behind' if behind else ''}"
    plain_tag, gzip_tag = f'"{key}"', f'"{key}-gz"'
    matched = _not_modified(request, (plain_tag, gzip_tag), at)
    if isinstance(matched, str):
        count_soon("feed_requests", result="not_modified")
        return _finish(HttpResponseNotModified(), matched, at)
    # A page is at most MAX_CHANGES rows: built per request, a query and no more.
    body = _changes_page(after, limit, seq, behind)
    use_gzip = _wants_gzip(request) and len(body) > artifacts.GZIP_OVER
    if matched:
        count_soon("feed_requests", result="not_modified")
        return _finish(HttpResponseNotModified(), gzip_tag if use_gzip else plain_tag, at)
    count_soon("feed_requests", result="full")
    response = HttpResponse(_gzip(body) if use_gzip else body, content_type="application/json")
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    return _finish(response, gzip_tag if use_gzip else plain_tag, at)


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def _changes_page(after: int, limit: int, seq: int, behind: bool) -> bytes:
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


def _closing(stream: Iterator[bytes], source: Generator[bytes]) -> Iterator[bytes]:
    # A client that hangs up closes the response's iterator; `chain` would not pass that on, and
    # the snapshot's transaction would stay open until the generator was collected.
    try:
        yield from stream
    finally:
        source.close()
