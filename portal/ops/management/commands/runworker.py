"""The background worker: vetting runs, webhook deliveries, emails and periodic jobs.

Run any number of these on any number of machines; each row is claimed by one worker at a time
(a conditional UPDATE with a lease), so they never race for the same row, and a worker that dies
leaves its rows to the others once the lease runs out. On PostgreSQL a NOTIFY from the
transaction that created work wakes the workers at once; otherwise they poll.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from portal.core.wakeup import Listener
from portal.enforcement.models import WorkerHeartbeat
from portal.enforcement.webhooks import deliver_due_webhooks
from portal.notifications.outbox import deliver_due_emails
from portal.workflows.periodic import run_due_periodic_jobs
from portal.workflows.vetting import run_due_vetting

log = logging.getLogger("portal.worker")

JOBS: list[tuple[str, Callable[[], int]]] = [
    ("webhooks", deliver_due_webhooks),
    ("vetting", run_due_vetting),
    ("emails", deliver_due_emails),
    ("periodic", run_due_periodic_jobs),
]


class Command(BaseCommand):
    help = "Process the outbox tables and periodic jobs until stopped with SIGTERM or Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Process what is due now, then exit.")
        parser.add_argument("--poll", type=float, default=None, help="Seconds between polls.")

    def handle(self, *args: Any, **options: Any) -> None:
        poll = options["poll"] if options["poll"] is not None else settings.WORKER_POLL_SECONDS
        stop = threading.Event()
        name = f"{socket.gethostname()}:{os.getpid()}"

        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info("worker: stopping after the current batch")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        listener = None if options["once"] else Listener(stop)
        log.info(
            "worker %s: started, polling every %.1fs%s",
            name,
            poll,
            " with LISTEN" if listener and listener.conn else "",
        )
        try:
            while not stop.is_set():
                did = self.run_jobs_once()
                WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})
                if options["once"]:
                    break
                if not did and listener is not None:
                    listener.wait(poll)
        finally:
            if listener is not None:
                listener.close()
        log.info("worker %s: stopped", name)

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
