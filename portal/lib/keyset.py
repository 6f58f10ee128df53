"""Keyset ("seek") pagination: pages by the last row's sort values instead of OFFSET, so that
page 500 costs what page 1 costs and rows added meanwhile don't shift the pages."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False
    kind: type = str  # how the cursor value is read back: str, int or datetime


def _encode_value(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, datetime)
        else str(value)
        if not isinstance(value, int)
        else value
    )


def _decode_value(value: Any, kind: type) -> Any:
    if kind is datetime:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError("cursor datetimes carry their time zone")
        return when
    if kind is int:
        if not isinstance(value, int):
            raise ValueError("not an integer")
        return value
    if not isinstance(value, str):
        raise ValueError("not a string")  # uuid.UUID(5) would raise AttributeError
    return kind(value)


def encode_cursor(row: Any, keys: tuple[SortKey, ...]) -> str:
    values = [_encode_value(getattr(row, k.field)) for k in keys]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: tuple[SortKey, ...]) -> list[Any] | None:
    """The cursor's values, or None for a cursor that is not ours (then the first page is shown)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            return None
        return [_decode_value(v, k.kind) for v, k in zip(raw, keys, strict=True)]
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        return None


def after(values: list[Any], keys: tuple[SortKey, ...]) -> Q:
    """Rows strictly after `values` in the order `keys` describe."""
    condition = Q()
    for i, key in enumerate(keys):
        step = Q(**{f"{k.field}": v for k, v in zip(keys[:i], values[:i], strict=True)})
        lookup = "lt" if key.descending else "gt"
        step &= Q(**{f"{key.field}__{lookup}": values[i]})
        condition |= step
    # Implied by the above, but unlike the OR it is a range a database can seek to in an index
    # on the sort keys: without it a deep page reads every row before the cursor.
    first = keys[0]
    bound = Q(**{f"{first.field}__{'lte' if first.descending else 'gte'}": values[0]})
    return bound & condition


@dataclass
class Page[T]:
    rows: list[T]
    next_cursor: str


def paginate[M: models.Model](
    queryset: models.QuerySet[M], keys: tuple[SortKey, ...], cursor: str, size: int
) -> Page[M]:
    ordering = [f"-{k.field}" if k.descending else k.field for k in keys]
    queryset = queryset.order_by(*ordering)
    values = decode_cursor(cursor, keys) if cursor else None
    if values is not None:
        queryset = queryset.filter(after(values, keys))
    rows = list(queryset[: size + 1])
    next_cursor = encode_cursor(rows[size - 1], keys) if len(rows) > size else ""
    return Page(rows[:size], next_cursor)
