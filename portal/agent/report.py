"""A telemetry report: how many port-25 connections each source address opened in an interval,
in the shape `POST /api/v1/telemetry/smtp` takes (docs/enforcement.md, "Telemetry")."""

from __future__ import annotations

import gzip
import json
import re
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from portal.agent import VERSION

FIELDS = ("blocked", "accepted", "observed")
MAX_ADDRESSES = 100_000  # per report, the portal's limit
AGENT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


def default_agent_name(suffix: str = "") -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "agent"
    return host[: 64 - len(suffix)] + suffix


def rfc3339(moment: datetime, *, round_up: bool = False) -> str:
    """Whole seconds; `round_up` for an interval's end, so that the interval sent covers the
    one counted (the portal matches it against exemptions created within that last second)."""
    if round_up and moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Report:
    source: str  # "nftables" or "pmacct"
    start: datetime
    end: datetime
    # address -> [blocked, accepted, observed]
    counts: dict[str, list[int]] = field(default_factory=dict)
    estimated: bool = False
    # Given when the report is first sent and never changed after, so that a resend of a report
    # the portal may already hold is a no-op there.
    sequence: int | None = None
    resend: bool = False  # numbered and perhaps sent by an earlier run (the flow forwarder's)

    def add(self, address: str, blocked: int = 0, accepted: int = 0, observed: int = 0) -> None:
        counts = self.counts.setdefault(address, [0, 0, 0])
        counts[0] += blocked
        counts[1] += accepted
        counts[2] += observed

    def merged(self, later: Report) -> Report:
        # A report once numbered may be at the portal already: it is never changed.
        assert self.sequence is None
        assert later.sequence is None
        merged = Report(
            self.source, min(self.start, later.start), max(self.end, later.end), estimated=self.estimated
        )
        merged.estimated = self.estimated or later.estimated
        for report in (self, later):
            for address, (blocked, accepted, observed) in report.counts.items():
                merged.add(address, blocked, accepted, observed)
        return merged

    def batches(self, size: int) -> list[Report]:
        """Reports of at most `size` addresses each, always the same for the same report."""
        addresses = sorted(self.counts)
        return [
            replace(self, counts={a: self.counts[a] for a in addresses[i : i + size]})
            for i in range(0, len(addresses), size)
        ] or [self]

    def body(self, agent: str) -> bytes:
        assert self.sequence is not None
        counts = []
        for address, values in self.counts.items():
            entry: dict[str, object] = {"address": address}
            entry.update((name, value) for name, value in zip(FIELDS, values, strict=True) if value)
            counts.append(entry)
        document = {
            "agent": agent,
            "version": VERSION,
            "sequence": self.sequence,
            "source": self.source,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end, round_up=True),
            "estimated": self.estimated,
            "counts": counts,
        }
        # Level 6: most of the gain of 9 at a third of the time, for a body sent every minute.
        return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=6)
