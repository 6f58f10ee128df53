"""Receiving the portal's webhooks (Standard Webhooks, standardwebhooks.com) to apply a change at
once instead of at the next poll.

A message is trusted only if one of its `v1` signatures is the HMAC-SHA256, under one of our
secrets, of `{webhook-id}.{webhook-timestamp}.{body}`, and its timestamp is within five minutes
of our clock (a captured message can't be replayed later). The portal retries until it gets a
2xx, so the same `webhook-id` may arrive more than once: it is applied once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from portal.agent.client import BadFeed, Change, parse_block

TOLERANCE_SECONDS = 300
MAX_BODY = 256 * 1024
OPS = {
    "exemption.activated": "add",
    "exemption.reinstated": "add",
    "exemption.suspended": "remove",
    "exemption.revoked": "remove",
    "exemption.expired": "remove",
}


class InvalidWebhook(Exception):
    """Not a message from the portal, or not a current one: answer 401 and apply nothing."""

    status = 401


class MalformedWebhook(InvalidWebhook):
    """Signed by the portal but not a message the agent understands: answer 400."""

    status = 400


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret, as the portal shows it for the endpoint."""
    if not secret.startswith("whsec_"):
        raise ValueError("A webhook secret starts with whsec_ (copy it from the portal's endpoint page).")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("The webhook secret is not whsec_ followed by base64.") from None


def verify(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, *, now: float) -> str:
    """Check the signature and timestamp; return the message id. Raises InvalidWebhook."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not message_id or not timestamp or not signatures:
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise InvalidWebhook("webhook-timestamp is not Unix seconds")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise InvalidWebhook("webhook-timestamp is more than five minutes from our clock")
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            offered = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if any(hmac.compare_digest(offered, digest) for digest in expected):
            return message_id
    raise InvalidWebhook("no v1 signature matches our secret")


def parse_event(body: bytes) -> Change | None:
    """The change a message announces, or None for event types the agent has no use for."""
    try:
        message = json.loads(body)
    except ValueError:
        raise MalformedWebhook("the body is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        raise MalformedWebhook("the body has no data object")
    op = OPS.get(str(message.get("type")))
    if op is None:
        return None
    data = message["data"]
    sequence, exemption = data.get("sequence"), data.get("id")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not isinstance(exemption, str):
        raise MalformedWebhook("the data lacks the exemption id or the sequence number")
    try:
        block = parse_block(data.get("block"))
    except BadFeed as exc:
        raise MalformedWebhook(str(exc)) from None
    return Change(seq=sequence, op=op, exemption=exemption, block=block)


class SeenIds:
    """The last `size` message ids, to acknowledge redeliveries without applying them twice."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, message_id: str) -> bool:
        with self._lock:
            if message_id in self._ids:
                self._ids.move_to_end(message_id)
                return False
            self._ids[message_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True


@dataclass
class WebhookStats:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


class WebhookReceiver:
    """Everything between the HTTP request and the agent: returns the status code to answer."""

    def __init__(
        self, secrets: Sequence[str], apply: Callable[[Change], None], clock: Callable[[], float]
    ) -> None:
        self._keys = [decode_secret(s) for s in secrets]
        self._apply = apply
        self._clock = clock
        self.seen = SeenIds()
        self.stats = WebhookStats()

    def receive(self, headers: Mapping[str, str], body: bytes) -> int:
        try:
            message_id = verify(self._keys, headers, body, now=self._clock())
            change = parse_event(body)
        except InvalidWebhook:
            self.stats.rejected += 1
            raise
        if not self.seen.first_time(message_id):
            self.stats.duplicates += 1
            return 204
        self.stats.accepted += 1
        if change is not None:
            self._apply(change)
        return 204
