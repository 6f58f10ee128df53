"""Reads that may lag, from a read replica: the feeds' and the review queue's GET requests.

With DATABASE_REPLICA_URL set, `ReplicaReadsMiddleware` runs the GET and HEAD requests under
REPLICA_READ_PATHS in `replica_reads()`, and `ReplicaRouter` sends their reads to the replica.
Everything else stays on the primary: writes, reads inside a transaction (they may lock or must
see the transaction's own rows), every request that isn't a read of those pages, the models
that must be fresh whatever the page (sessions, users, API keys: a revoked key is refused at
once, a new login is recognised at once), and a browser's reads for REPLICA_PIN_SECONDS after it
changed something, so that a reviewer sees the queue after their own decision.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
# Set on the response to a request that changed something; while present, reads are fresh.
PIN_COOKIE = "eep_primary"
# Always from the primary: who is asking, and whether they still may.
FRESH_APPS = frozenset({"sessions", "auth", "axes", "otp_totp", "otp_static", "contenttypes", "django_cache"})
FRESH_MODELS = frozenset({"accounts.apikey", "accounts.membership"})

_reads_may_lag: contextvars.ContextVar[bool] = contextvars.ContextVar("reads_may_lag", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    token = _reads_may_lag.set(True)
    try:
        yield
    finally:
        _reads_may_lag.reset(token)


class ReplicaRouter:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        if not settings.DATABASE_REPLICA_URL or not _reads_may_lag.get():
            return None
        meta = model._meta
        if meta.app_label in FRESH_APPS or meta.label_lower in FRESH_MODELS:
            return None
        if transaction.get_connection().in_atomic_block:
            return None
        return REPLICA

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        return True  # the same rows, whichever copy they were read from

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return db != REPLICA  # the replica follows the primary's schema by replication


def reads_may_lag(request: HttpRequest) -> bool:
    return (
        bool(settings.DATABASE_REPLICA_URL)
        and request.method in ("GET", "HEAD")
        and PIN_COOKIE not in request.COOKIES
        and request.path.startswith(tuple(settings.REPLICA_READ_PATHS))
    )


class ReplicaReadsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if reads_may_lag(request):
            with replica_reads():
                return self.get_response(request)
        response = self.get_response(request)
        if settings.DATABASE_REPLICA_URL and request.method not in ("GET", "HEAD", "OPTIONS"):
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=settings.REPLICA_PIN_SECONDS,
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response
