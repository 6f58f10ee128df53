"""The portal's enforcement feeds over HTTP: the snapshot (`exemptions.json`) and the change feed
(`changes?after=N`), the latter with conditional requests so that an idle poll costs a 304."""

from __future__ import annotations

import gzip
import http.client
import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from portal.agent.nft import Network

USER_AGENT = "egress-exemption-portal-agent/1"
MAX_BODY = 512 * 1024 * 1024


class PortalError(Exception):
    """The feed could not be read; the set in force stays as it is."""


class Unreachable(PortalError):
    """No answer, a timeout, or an answer meaning "try later" (429, 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeyRefused(PortalError):
    """401 or 403: the key is wrong, revoked, or not an enforcement key. It won't heal itself."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the portal refused the agent's key (HTTP {status}: {detail.rstrip('.')})")
        self.status = status


class BadFeed(PortalError):
    """An answer the agent can't use: an unexpected status or a malformed body."""


@dataclass(frozen=True)
class Snapshot:
    cursor: int
    exemptions: dict[str, Network]


@dataclass(frozen=True)
class Change:
    seq: int
    op: str  # "add" or "remove"
    exemption: str
    block: Network


@dataclass(frozen=True)
class ChangePage:
    changes: list[Change]
    cursor: int
    latest: int
    has_more: bool
    reset: bool


def parse_block(value: object) -> Network:
    if not isinstance(value, str):
        raise BadFeed(f"a block should be a string, got {value!r}")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise BadFeed(f"{value!r} is not an IP address or CIDR block") from None


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadFeed(f"{what} should be a whole number, got {value!r}")
    return value


def parse_snapshot(data: Any) -> Snapshot:
    if not isinstance(data, dict) or not isinstance(data.get("exemptions"), list):
        raise BadFeed("the snapshot has no list of exemptions")
    exemptions: dict[str, Network] = {}
    for item in data["exemptions"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise BadFeed(f"an exemption in the snapshot has no id: {item!r}")
        if item.get("state", "active") == "active":
            exemptions[item["id"]] = parse_block(item.get("block"))
    return Snapshot(cursor=_count(data.get("cursor"), "the snapshot's cursor"), exemptions=exemptions)


def parse_changes(data: Any) -> ChangePage:
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise BadFeed("the change feed's answer has no list of changes")
    changes = []
    for item in data["changes"]:
        if not isinstance(item, dict) or item.get("op") not in ("add", "remove"):
            raise BadFeed(f"a change has no op add or remove: {item!r}")
        if not isinstance(item.get("exemption"), str):
            raise BadFeed(f"a change names no exemption: {item!r}")
        changes.append(
            Change(
                _count(item.get("seq"), "a change's seq"),
                item["op"],
                item["exemption"],
                parse_block(item.get("block")),
            )
        )
    return ChangePage(
        changes=changes,
        cursor=_count(data.get("cursor"), "the change feed's cursor"),
        latest=_count(data.get("latest"), "the change feed's latest"),
        has_more=data.get("has_more") is True,
        reset=data.get("reset") is True,
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the bearer key to wherever it points; refuse them all.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def portal_opener(ca_file: str | None) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file))
    )


class PortalClient:
    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 10.0,
        ca_file: str | None = None,
        page_size: int = 1000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self._key = key
        self._opener = portal_opener(ca_file)
        self._etag: tuple[str, str] | None = None  # (url, ETag) of the last change-feed answer
        self.not_modified = 0

    def snapshot(self) -> Snapshot:
        _, body, _ = self._get("/api/v1/feeds/exemptions.json")
        return parse_snapshot(self._json(body))

    def changes(self, after: int) -> ChangePage | None:
        """The changes after `after`, or None when the portal says nothing changed (304)."""
        path = "/api/v1/feeds/changes?" + urlencode({"after": after, "limit": self.page_size})
        url = self.base_url + path
        etag = self._etag[1] if self._etag and self._etag[0] == url else None
        status, body, new_etag = self._get(path, etag)
        if status == 304:
            self.not_modified += 1
            return None
        self._etag = (url, new_etag) if new_etag else None
        return parse_changes(self._json(body))

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BadFeed(f"the portal's answer is not JSON ({exc})") from None

    def _get(self, path: str, etag: str | None = None) -> tuple[int, bytes, str | None]:
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        if etag:
            headers["If-None-Match"] = etag
        # The URL's scheme was checked (http or https) when the configuration was read.
        request = urllib.request.Request(self.base_url + path, headers=headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, body, answer = response.status, response.read(MAX_BODY + 1), response.headers
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 304:
                    return 304, b"", exc.headers.get("ETag")
                raise self._error(exc.code, exc.read(4096), exc.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unreachable(f"the portal at {self.base_url} is unreachable: {reason}") from None
        if len(body) > MAX_BODY:
            raise BadFeed(f"the answer is larger than {MAX_BODY} bytes")
        if answer.get("Content-Encoding", "") == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise BadFeed(f"the answer is not valid gzip ({exc})") from None
        return status, body, answer.get("ETag")

    def _error(self, status: int, body: bytes, retry_after: str | None) -> PortalError:
        try:
            detail = str(json.loads(body).get("detail", ""))
        except (ValueError, AttributeError):
            detail = body.decode("utf-8", "replace")[:200]
        if status in (401, 403):
            return KeyRefused(status, detail or "no reason given")
        if status == 429 or status >= 500:
            wait = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
            return Unreachable(f"the portal answered {status}; trying again later", retry_after=wait)
        return BadFeed(f"the portal answered {status}: {detail}")
