"""The background worker: vetting runs, webhook deliveries, emails and periodic jobs.

Run any number of these on any number of machines; each row is claimed by one worker at a time
(a conditional UPDATE with a lease), so they never race for the same row, and a worker that dies
leaves its rows to the others once the lease runs out. On PostgreSQL a NOTIFY from the
transaction that created work wakes the workers at once; otherwise they poll.

Each kind of job runs in a lane of its own (a thread with its own database connection), so a
webhook never waits behind a DNSBL monitor pass, a slow vetting run or a slow mail server.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django.utils import timezone

from portal.core.wakeup import Listener
from portal.enforcement.artifacts import build_current as build_feed_artifacts
from portal.enforcement.models import WorkerHeartbeat
from portal.enforcement.webhooks import deliver_due_webhooks, seconds_until_next_webhook
from portal.notifications.outbox import deliver_due_emails
from portal.workflows.periodic import run_due_periodic_jobs
from portal.workflows.vetting import run_due_vetting

log = logging.getLogger("portal.worker")


@dataclass
class Lane:
    name: str
    job: Callable[[], int]
    # Seconds until this lane's next scheduled work (a retry), so that it wakes then rather
    # than at the next poll; None when nothing is scheduled.
    next_due: Callable[[], float | None] | None = None
    wake: threading.Event = field(default_factory=threading.Event)


def lanes() -> list[Lane]:
    return [
        Lane("webhooks", deliver_due_webhooks, seconds_until_next_webhook),
        Lane("vetting", run_due_vetting),
        Lane("emails", deliver_due_emails),
        Lane("periodic", run_due_periodic_jobs),
        # Feed snapshots of each new version, built once for every web process (artifacts.py).
        Lane("feeds", build_feed_artifacts),
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
        if options["once"]:
            for lane in lanes():
                run_job(lane)
            beat(name)
            return
        listener = Listener(stop)
        log.info(
            "worker %s: started, polling every %.1fs%s",
            name,
            poll,
            " with LISTEN" if listener.listening else "",
        )
        running = lanes()
        threads = [
            threading.Thread(target=run_lane, args=(lane, stop, poll), name=f"lane-{lane.name}", daemon=True)
            for lane in running
        ]
        for thread in threads:
            thread.start()
        try:
            while not stop.is_set():
                beat(name)
                if listener.wait(poll):
                    for lane in running:
                        lane.wake.set()
        finally:
            for lane in running:
                lane.wake.set()
            for thread in threads:
                thread.join()
            listener.close()
        log.info("worker %s: stopped", name)


def beat(name: str) -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def run_lane(lane: Lane, stop: threading.Event, poll: float) -> None:
    try:
        while not stop.is_set():
            # Cleared before the job looks for work: a NOTIFY arriving during the run makes it
            # look again rather than being lost.
            lane.wake.clear()
            if run_job(lane):
                continue
            timeout = poll
            due = lane.next_due() if lane.next_due is not None else None
            if due is not None:
                # A floor, so that a due row another worker holds can't turn this into a spin.
                timeout = min(poll, max(due, 0.1))
            lane.wake.wait(timeout)
    finally:
        connection.close()


def run_job(lane: Lane) -> int:
    close_old_connections()
    try:
        done = lane.job()
    except Exception:
        # One broken job must not stop the others; it is logged and retried next round.
        log.exception("worker: job %s failed", lane.name)
        time.sleep(1)
        return 0
    if done:
        log.info("worker: %s: %d done", lane.name, done)
    return done
