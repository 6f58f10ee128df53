"""Telemetry older than TELEMETRY_RETENTION_DAYS goes: hourly counts and the report log."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.telemetry.models import SmtpHour, TelemetryReport


def purge(now: datetime | None = None) -> int:
    """Delete what is past retention; how many hourly rows went. Agents stay (staff see them)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TELEMETRY_RETENTION_DAYS)
    # Neither model has dependants, so these are single DELETE statements on indexed columns.
    hours, _ = SmtpHour.objects.filter(hour__lt=cutoff).delete()
    TelemetryReport.objects.filter(received_at__lt=cutoff).delete()
    return hours
