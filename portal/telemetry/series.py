"""Hourly series of port-25 counts for charts and checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum

from portal.telemetry.ingest import hour_of
from portal.telemetry.models import SmtpHourQuerySet


@dataclass(frozen=True)
class HourPoint:
    hour: datetime
    blocked: int
    accepted: int


def hourly(rows: SmtpHourQuerySet, *, hours: int, now: datetime) -> list[HourPoint]:
    """One point per hour for the last `hours` hours up to `now`'s hour, zeros included."""
    last = hour_of(now)
    first = last - timedelta(hours=hours - 1)
    sums = {
        row["hour"]: row
        for row in rows.filter(hour__gte=first, hour__lte=last)
        .order_by()
        .values("hour")
        .annotate(b=Sum("blocked"), a=Sum("accepted"))
    }
    points = []
    for i in range(hours):
        hour = first + timedelta(hours=i)
        row = sums.get(hour)
        points.append(HourPoint(hour, int(row["b"]) if row else 0, int(row["a"]) if row else 0))
    return points


def total_blocked(rows: SmtpHourQuerySet, *, since: datetime, until: datetime) -> int:
    total = rows.filter(hour__gte=hour_of(since), hour__lt=until).aggregate(n=Sum("blocked"))["n"]
    return int(total or 0)
