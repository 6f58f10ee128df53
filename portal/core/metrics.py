"""Counters and gauges for /metrics, kept in the database (`Tally`) so that every process adds
to the same numbers: a per-process counter reads 0 on the gunicorn process that did not serve
the requests."""

from __future__ import annotations

import atexit
import logging
import time
from threading import Lock

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from portal.core.models import Tally


def key(name: str, label: str) -> str:
    return f"{name}:{label}"


def count(name: str, *, result: str, by: int = 1) -> None:
    """Add to a counter: one UPDATE of one row (created on first use)."""
    name = key(name, result)
    if Tally.objects.filter(name=name).update(value=F("value") + by, updated_at=timezone.now()):
        return
    Tally.objects.get_or_create(name=name)
    Tally.objects.filter(name=name).update(value=F("value") + by, updated_at=timezone.now())


# count_soon()'s additions not yet written, and when this process last wrote them.
_pending: dict[str, int] = {}
_pending_lock = Lock()
_flushed_at = 0.0


def count_soon(name: str, *, result: str, by: int = 1) -> None:
    """Add to a counter within about a second: for hot paths (a feed's 304), where an UPDATE of
    one shared row per request would queue every web process behind that row's lock."""
    global _flushed_at
    with _pending_lock:
        name = key(name, result)
        _pending[name] = _pending.get(name, 0) + by
        if time.monotonic() - _flushed_at < settings.METRICS_FLUSH_SECONDS:
            return
    flush()


def flush() -> None:
    global _flushed_at
    with _pending_lock:
        due = dict(_pending)
        _pending.clear()
        _flushed_at = time.monotonic()
    for name, by in due.items():
        if not Tally.objects.filter(name=name).update(value=F("value") + by, updated_at=timezone.now()):
            Tally.objects.get_or_create(name=name)
            Tally.objects.filter(name=name).update(value=F("value") + by, updated_at=timezone.now())


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:  # the database may be gone by then; a second's counts are not worth a traceback
        logging.getLogger(__name__).debug("metrics: counts lost at exit", exc_info=True)


atexit.register(_flush_at_exit)


def set_gauge(name: str, *, label: str, value: int) -> None:
    Tally.objects.update_or_create(name=key(name, label), defaults={"value": value})


def read(name: str, *labels: str) -> dict[str, int]:
    """The values of `name` under each label, 0 for those never counted."""
    values = dict(Tally.objects.filter(name__in=[key(name, x) for x in labels]).values_list("name", "value"))
    # With what this process counted and has yet to write (other processes write theirs within
    # a second of their next request).
    return {
        label: int(values.get(key(name, label), 0)) + _pending.get(key(name, label), 0) for label in labels
    }
