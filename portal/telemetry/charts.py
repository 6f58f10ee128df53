"""The hourly port-25 chart of the last 7 days shown where decisions are made: the reviewer's
request page and the staff address and tenant history pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.safestring import SafeString

from portal.lib.charts import Reference, Series, time_series
from portal.telemetry.models import SmtpHourQuerySet
from portal.telemetry.series import HourPoint, hourly

HOURS = 7 * 24


@dataclass(frozen=True)
class Port25Chart:
    svg: SafeString
    points: list[HourPoint]
    declared_daily: int | None

    @property
    def active_hours(self) -> list[HourPoint]:
        """The hours with any connection, newest first: the table beside the chart."""
        return [p for p in reversed(self.points) if p.blocked or p.accepted]

    @property
    def blocked(self) -> int:
        return sum(p.blocked for p in self.points)

    @property
    def accepted(self) -> int:
        return sum(p.accepted for p in self.points)

    @property
    def busiest(self) -> HourPoint | None:
        top = max(self.points, key=lambda p: p.blocked + p.accepted, default=None)
        return top if top and (top.blocked or top.accepted) else None

    @property
    def declared_hourly(self) -> float | None:
        return self.declared_daily / 24 if self.declared_daily else None


def port25_chart(
    rows: SmtpHourQuerySet, *, title: str, declared_daily: int | None, now: datetime | None = None
) -> Port25Chart:
    points = hourly(rows, hours=HOURS, now=now or timezone.now())
    reference = (
        Reference(declared_daily / 24, f"declared {declared_daily / 24:,.0f}/h") if declared_daily else None
    )
    svg = time_series(
        title=title,
        labels=[f"{p.hour:%m-%d %H}h" for p in points],
        series=[
            Series("Blocked", [p.blocked for p in points], "series-2"),
            Series("Accepted", [p.accepted for p in points], "series-1"),
        ],
        stacked=True,
        reference=reference,
    )
    return Port25Chart(svg, points, declared_daily)
