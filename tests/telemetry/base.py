"""What the telemetry tests share: an agent's API client and reports built as agents send them."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import Scope
from portal.telemetry.ingest import hour_of
from tests.base import PortalTestCase


def last_hour() -> datetime:
    """The start of the previous full UTC hour: reports about it are never in the future."""
    return hour_of(timezone.now()) - timedelta(hours=1)


def report(
    *counts: dict[str, Any], sequence: int = 1, at: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    """A report body about one minute of `at`'s hour (default: ten minutes into the last hour)."""
    start = at or last_hour() + timedelta(minutes=10)
    body: dict[str, Any] = {
        "agent": "gw-fra-1",
        "version": "1.2.0",
        "sequence": sequence,
        "source": "nftables",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=1)).isoformat(),
        "estimated": False,
        "counts": list(counts),
    }
    body.update(fields)
    return body


class TelemetryTestCase(PortalTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.agent = self.api(Scope.ENFORCEMENT)
        self.sequence = 0

    def send(self, body: dict[str, Any], *, client: APIClient | None = None, compress: bool = True) -> Any:
        raw = json.dumps(body).encode()
        return (client or self.agent).post(
            "/api/v1/telemetry/smtp",
            gzip.compress(raw) if compress else raw,
            content_type="application/json",
            headers={"Content-Encoding": "gzip"} if compress else {},
        )

    def counts(self, *entries: dict[str, Any], at: datetime | None = None, **fields: Any) -> Any:
        """Send the next report of agent gw-fra-1 and expect it accepted."""
        self.sequence += 1
        response = self.send(report(*entries, sequence=self.sequence, at=at, **fields))
        self.assertEqual(response.status_code, 202, response.content)
        return response
