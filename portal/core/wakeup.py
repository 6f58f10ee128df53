"""Waking workers the moment there is work: PostgreSQL LISTEN/NOTIFY, polling elsewhere."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import connection

log = logging.getLogger(__name__)
CHANNEL = "portal_work"


def notify_workers() -> None:
    """Call inside the transaction that creates work: NOTIFY is delivered when it commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


class Listener:
    """Waits for a NOTIFY or a timeout. On SQLite, or if listening fails, it just sleeps."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.conn: Any = None
        if connection.vendor == "postgresql":
            try:
                import psycopg

                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                self.conn = psycopg.connect(**params, autocommit=True)
                self.conn.execute(f"LISTEN {CHANNEL}")
            except Exception:  # polling still works; say why we fell back
                log.exception("worker: LISTEN failed, falling back to polling")
                self.conn = None

    def wait(self, timeout: float) -> None:
        if self.conn is None:
            self.stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        try:
            # In slices of a second: SIGTERM only sets `stop`, which must end the wait promptly.
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                for _ in self.conn.notifies(timeout=min(left, 1.0), stop_after=1):
                    return
        except Exception:
            log.exception("worker: lost the LISTEN connection, polling from now on")
            self.conn = None
            self.stop.wait(timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
