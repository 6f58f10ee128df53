"""Telemetry reports on their way to the portal: `POST /api/v1/telemetry/smtp`, one report at a
time, in order, until a 2xx.

A report is given its sequence number when it is first sent, and the number is saved before the
POST; a resend carries the same number and the same counts, so that the portal, which ignores a
repeated sequence, counts nothing twice and a restart never reuses a number. Reports that have
not been sent yet are merged when too many pile up (the portal unreachable for long), so memory
stays bounded by the addresses seen, not by the time the portal was away.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from portal.agent.client import USER_AGENT, KeyRefused, PortalError, Unreachable, portal_opener
from portal.agent.report import MAX_ADDRESSES, Report
from portal.agent.state import write_atomically

log = logging.getLogger("portal.agent")
PATH = "/api/v1/telemetry/smtp"
BATCH = 50_000  # addresses per POST; a report with more is sent as several
MAX_UNSENT = 60  # reports kept apart before the oldest are merged: an hour at the default interval
SEQUENCE_FORMAT = "egress-exemption-agent-telemetry/1"
Allocator = Callable[[int], int]  # (how many) -> the first of that many new sequence numbers


class Rejected(PortalError):
    """A 4xx other than 401/403/408/429: the portal won't take this report, however often sent."""


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Poster:
    def __init__(
        self, base_url: str, key: str, agent: str, *, timeout: float = 10.0, ca_file: str | None = None
    ) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.agent = agent
        self.timeout = timeout
        self._key = key
        self._opener = portal_opener(ca_file)

    def post(self, report: Report) -> dict[str, Any]:
        """The portal's answer to a 2xx. Raises Unreachable, KeyRefused or Rejected."""
        # The URL's scheme was checked (http or https) when the configuration was read.
        request = urllib.request.Request(  # noqa: S310
            self.url,
            data=report.body(self.agent),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._key}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            with exc:
                raise _error(exc.code, exc.read(4096), exc.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unreachable(f"the portal at {self.url} is unreachable: {reason}") from None
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else {}


def _error(status: int, body: bytes, retry_after: str | None) -> PortalError:
    try:
        detail = str(json.loads(body).get("detail", ""))
    except (ValueError, AttributeError):
        detail = body.decode("utf-8", "replace")[:200]
    if status in (401, 403):
        return KeyRefused(status, detail or "no reason given")
    if status in (408, 429) or status >= 500:
        return Unreachable(f"the portal answered {status}", retry_after=retry_after_seconds(retry_after))
    return Rejected(f"the portal refused the report with {status}: {detail or repr(body[:200])}")


class SequenceFile:
    """The last sequence number given out, kept in the state directory."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self._now = now
        self._last: int | None = None

    def load(self) -> int:
        try:
            data = json.loads(self.path.read_bytes())
            last = data["sequence"] if data.get("format") == SEQUENCE_FORMAT else None
            if isinstance(last, int) and not isinstance(last, bool) and last >= 0:
                return last
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            pass
        return self.jump(f"{self.path} is unreadable")

    def jump(self, why: str) -> int:
        """A number beyond any used before, when the saved one can't be trusted: the seconds
        since 1970 outgrow one report a minute (and its batches) by far."""
        floor = int(self._now())
        log.warning("%s; telemetry sequence numbers continue from %d", why, floor)
        return max(floor, self._last or 0)

    def allocate(self, count: int) -> int:
        """Save, then return, the first of `count` new numbers. Raises OSError (nothing given)."""
        last = self.load() if self._last is None else self._last
        self._save(last + count)
        self._last = last + count
        return last + 1

    def restart_after(self, stale: int) -> None:
        """The portal already has `stale` from another life of this agent: skip far ahead."""
        self._save(self.jump(f"the portal already had telemetry sequence {stale}"))
        self._last = None

    def _save(self, last: int) -> None:
        body = json.dumps({"format": SEQUENCE_FORMAT, "sequence": last}).encode()
        write_atomically(self.path, body)


class Sequences(Protocol):
    def allocate(self, count: int) -> int: ...
    def restart_after(self, stale: int) -> None: ...


class Outbox:
    def __init__(
        self,
        poster: Poster,
        sequences: Sequences,
        *,
        batch: int = BATCH,
        max_unsent: int = MAX_UNSENT,
        first_delay: float = 1.0,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert 0 < batch <= MAX_ADDRESSES
        self.poster, self.sequences = poster, sequences
        self.batch, self.max_unsent = batch, max_unsent
        self.first_delay, self.max_backoff = first_delay, max_backoff
        self._clock = clock
        self.pending: deque[Report] = deque()
        self.attempts = 0  # of the report at the head
        self.failures = 0
        self.next_attempt = 0.0
        self.delivered = 0

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, report: Report) -> None:
        self.pending.append(report)
        unsent = [i for i, r in enumerate(self.pending) if r.sequence is None]
        while len(unsent) > self.max_unsent:
            first, second = unsent[0], unsent[1]
            self.pending[first] = self.pending[first].merged(self.pending[second])
            del self.pending[second]
            unsent = [i for i, r in enumerate(self.pending) if r.sequence is None]

    def due(self) -> bool:
        return bool(self.pending) and self._clock() >= self.next_attempt

    def seconds_until_due(self) -> float:
        return max(0.0, self.next_attempt - self._clock())

    def attempt(self) -> Report | None:
        """POST the report at the head once: the report if the portal took it (or refused it for
        good, which is logged), None if it is to be tried again after `next_attempt`."""
        if self.pending[0].sequence is None and not self._number_head():
            return None
        report = self.pending[0]
        self.attempts += 1
        try:
            answer = self.poster.post(report)
        except Rejected as exc:
            log.error("%s; report %s dropped (%d addresses)", exc, report.sequence, len(report.counts))
            return self._done()
        except (Unreachable, KeyRefused) as exc:
            retry_after = exc.retry_after if isinstance(exc, Unreachable) else None
            delay = self._failed(retry_after)
            level = logging.ERROR if isinstance(exc, KeyRefused) else logging.WARNING
            log.log(level, "telemetry report %s not sent: %s; again in %.1fs", report.sequence, exc, delay)
            return None
        if answer.get("duplicate") is True and self.attempts == 1 and not report.resend:
            # Never sent before, yet the portal has the number: it was given out in an earlier
            # life of this agent (its state directory lost). Number this report afresh.
            assert report.sequence is not None
            self.sequences.restart_after(report.sequence)
            report.sequence = None
            self.attempts = 0
            return None
        return self._done()

    def _number_head(self) -> bool:
        batches = self.pending.popleft().batches(self.batch)
        try:
            first = self.sequences.allocate(len(batches))
        except OSError as exc:
            self.pending.extendleft(reversed(batches))
            delay = self._failed(None)
            log.error("can't save the telemetry sequence (%s); not sending, again in %.1fs", exc, delay)
            return False
        for number, batch in enumerate(batches, start=first):
            batch.sequence = number
        self.pending.extendleft(reversed(batches))
        return True

    def _done(self) -> Report:
        self.failures = self.attempts = 0
        self.next_attempt = 0.0
        self.delivered += 1
        return self.pending.popleft()

    def _failed(self, retry_after: float | None) -> float:
        self.failures += 1
        delay = min(self.max_backoff, self.first_delay * 2.0 ** min(self.failures - 1, 30))
        delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter spreads agents' retries, it guards nothing
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        self.next_attempt = self._clock() + delay
        return delay
