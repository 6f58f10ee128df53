"""The agent's reporting thread: every `--telemetry-seconds` it reads the counting sets and
sends the connections counted since the last reading to the portal, beside the sync loop.

A report goes out every interval even when nothing was counted: the portal knows from it that
the agent is alive. On SIGTERM the thread reads once more and tries, for a few seconds, to send
what it holds; the counting sets start from zero when the agent starts again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from portal.agent.config import Config
from portal.agent.counters import CounterReader
from portal.agent.nft import NftError
from portal.agent.outbox import Outbox, Poster, SequenceFile
from portal.agent.report import Report

log = logging.getLogger("portal.agent")
LAST_CHANCE_SECONDS = 5.0


class Telemetry:
    def __init__(
        self,
        reader: CounterReader,
        outbox: Outbox,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader, self.outbox, self.interval = reader, outbox, interval
        self._clock = clock
        self.thread: threading.Thread | None = None

    @classmethod
    def of(cls, config: Config, reader: CounterReader) -> Telemetry:
        poster = Poster(
            config.portal_url,
            config.key,
            config.agent_name,
            timeout=config.timeout_seconds,
            ca_file=config.ca_file,
        )
        outbox = Outbox(
            poster,
            SequenceFile(config.state_dir / "telemetry.json"),
            first_delay=min(config.telemetry_seconds, 5.0),
            max_backoff=config.max_backoff_seconds,
        )
        return cls(reader, outbox, interval=config.telemetry_seconds)

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="telemetry", daemon=True)
        self.thread.start()
        return self.thread

    def run(self, stop: threading.Event) -> None:
        next_read = self._clock() + self.interval
        while not stop.is_set():
            now = self._clock()
            if now >= next_read:
                self.collect()
                next_read = max(next_read + self.interval, now)
            elif self.outbox.due():
                self.outbox.attempt()
            else:
                wake = next_read - now
                if self.outbox.pending:
                    wake = min(wake, self.outbox.seconds_until_due())
                stop.wait(wake)
        self.collect()
        self.last_chance(self._clock() + LAST_CHANCE_SECONDS)

    def collect(self) -> None:
        try:
            start, end, tally = self.reader.take()
        except NftError as exc:
            log.warning("can't read the counting sets (%s); the next report covers this interval too", exc)
            return
        report = Report("nftables", start, end)
        for address, (blocked, accepted) in tally.items():
            report.add(address, blocked=blocked, accepted=accepted)
        self.outbox.add(report)

    def last_chance(self, deadline: float) -> None:
        pause = threading.Event()
        while self.outbox.pending and self._clock() < deadline:
            if self.outbox.due():
                self.outbox.attempt()
            else:
                pause.wait(min(self.outbox.seconds_until_due(), max(0.0, deadline - self._clock())))
        if self.outbox.pending:
            addresses = sum(len(r.counts) for r in self.outbox.pending)
            log.error(
                "stopping with %d telemetry report(s) unsent (%d addresses); they are lost",
                len(self.outbox.pending),
                addresses,
            )
