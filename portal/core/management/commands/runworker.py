"""The background worker: delivers whatever the outbox tables hold.

Run any number of these on any number of machines; each row is claimed by one worker at a time
(a conditional UPDATE with a lease), so they never race for the same row, and a worker that dies
leaves its rows to the others once the lease runs out.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from portal.notifications.outbox import deliver_due_emails
from portal.vetting.jobs import run_due_vetting

log = logging.getLogger("portal.worker")

JOBS: list[tuple[str, Callable[[], int]]] = [
    ("vetting", run_due_vetting),
    ("emails", deliver_due_emails),
]


class Command(BaseCommand):
    help = "Process the outbox tables (vetting runs, emails) until stopped with SIGTERM or Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Process what is due now, then exit.")
        parser.add_argument("--poll", type=float, default=None, help="Seconds between polls.")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        poll = options["poll"] if options["poll"] is not None else settings.WORKER_POLL_SECONDS
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info("worker: stopping after the current batch")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("worker: started, polling every %.1fs", poll)
        while not stop.is_set():
            did = self.run_jobs_once()
            if options["once"]:
                break
            if not did:
                stop.wait(poll)
        log.info("worker: stopped")

    def run_jobs_once(self) -> int:
        total = 0
        for name, job in JOBS:
            close_old_connections()
            try:
                done = job()
            except Exception:
                # One broken job must not stop the others; it is logged and retried next round.
                log.exception("worker: job %s failed", name)
                time.sleep(1)
                continue
            if done:
                log.info("worker: %s: %d done", name, done)
            total += done
        return total
