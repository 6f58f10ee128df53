"""API throttles: requests per API key, and failed authentications per client address.

Their counts live in a database cache table, so every web process adds to the same numbers
(a per-process count would let four gunicorn workers take four times the rate)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from portal.accounts.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """At most API_THROTTLE_KEY_RATE requests per key."""

    scope = "api_key"

    def __init__(self) -> None:
        self.cache = caches["throttle"]
        super().__init__()

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_KEY_RATE or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return f"throttle:key:{request.auth.pk}" if isinstance(request.auth, ApiKey) else None


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """At most API_THROTTLE_FAILED_AUTH_RATE wrong keys per client address; past it, every
    request from the address that presents a key gets 429 until the window moves on, so keys
    can't be guessed at speed."""

    scope = "failed_auth"

    def __init__(self, request: Request) -> None:
        self.cache = caches["throttle"]
        super().__init__()
        self.key = f"throttle:auth:{self.get_ident(request)}"

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_FAILED_AUTH_RATE or None

    def refuse_if_over(self) -> None:
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - duration]
        if len(self.history) >= limit:
            raise exceptions.Throttled(wait=self.wait())

    def failed(self) -> None:
        _, duration = self.parse_rate(self.rate)
        if duration is None:
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, duration)
