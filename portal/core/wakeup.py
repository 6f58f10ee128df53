"""Waking workers the moment there is work: PostgreSQL LISTEN/NOTIFY, polling elsewhere."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import connection

log = logging.getLogger(__name__)
CHANNEL = "portal_work"
# Re-listening after a lost connection waits 1, 2, 4 … seconds, at most this long: a restarting
# PostgreSQL is not hammered, and a worker is back on NOTIFY within a minute of its return.
MAX_BACKOFF_SECONDS = 60.0


def notify_workers() -> None:
    """Call inside the transaction that creates work: NOTIFY is delivered when it commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


class Listener:
    """Waits for a NOTIFY or a timeout. On SQLite it just sleeps; on PostgreSQL a lost
    listening connection is opened again with backoff, and the worker polls meanwhile."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.conn: Any = None
        self.enabled = connection.vendor == "postgresql"
        self.backoff = 1.0
        self.retry_at = 0.0
        if self.enabled:
            self.listen()

    def listen(self) -> bool:
        again = self.retry_at > 0
        try:
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self.conn = psycopg.connect(**params, autocommit=True)
            self.conn.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:  # polling still works; say why, and when we try again
            self.lost(f"LISTEN failed ({type(exc).__name__}: {exc})")
            return False
        if again:
            log.warning("worker: listening again")
        self.backoff, self.retry_at = 1.0, 0.0
        return True

    def lost(self, why: str) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken: closing it is best effort
                log.debug("worker: closing the lost LISTEN connection failed", exc_info=True)
        self.conn = None
        self.retry_at = time.monotonic() + self.backoff
        log.warning("worker: %s; polling, listening again in %.0fs", why, self.backoff)
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)

    def wait(self, timeout: float) -> bool:
        """True when woken by a NOTIFY, or by listening again (work may have arrived unheard)."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.conn is None:
                if self.enabled and time.monotonic() >= self.retry_at and self.listen():
                    return True
                pause = min(left, self.retry_at - time.monotonic()) if self.enabled else left
                self.stop.wait(max(pause, 0.05))
                continue
            try:
                # In slices of a second: SIGTERM only sets `stop`, which must end the wait promptly.
                for _ in self.conn.notifies(timeout=min(left, 1.0), stop_after=1):
                    return True
            except Exception as exc:
                self.lost(f"lost the LISTEN connection ({type(exc).__name__})")
        return False

    @property
    def listening(self) -> bool:
        return self.conn is not None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
