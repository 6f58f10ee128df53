"""Counters for /metrics, kept in the cache so that every process adds to the same numbers
when CACHE_URL points at Redis (per process with the default local-memory cache)."""

from __future__ import annotations

from django.core.cache import cache

KNOWN: dict[str, tuple[str, ...]] = {
    "feed_requests": ("full", "not_modified"),
}


def _key(name: str, result: str) -> str:
    return f"metrics:{name}:{result}"


def count(name: str, *, result: str) -> None:
    key = _key(name, result)
    try:
        cache.incr(key)
    except ValueError:
        cache.add(key, 0, timeout=None)
        cache.incr(key)


def read(name: str) -> dict[str, int]:
    values = cache.get_many([_key(name, r) for r in KNOWN[name]])
    return {r: int(values.get(_key(name, r), 0)) for r in KNOWN[name]}
