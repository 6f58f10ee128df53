"""Counters and gauges for /metrics, kept in the database (`Tally`) so that every process adds
to the same numbers: a per-process counter reads 0 on the gunicorn process that did not serve
the requests."""

from __future__ import annotations

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


def set_gauge(name: str, *, label: str, value: int) -> None:
    Tally.objects.update_or_create(name=key(name, label), defaults={"value": value})


def read(name: str, *labels: str) -> dict[str, int]:
    """The values of `name` under each label, 0 for those never counted."""
    values = dict(Tally.objects.filter(name__in=[key(name, x) for x in labels]).values_list("name", "value"))
    return {label: int(values.get(key(name, label), 0)) for label in labels}
