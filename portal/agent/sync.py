"""The agent: keeps the kernel's exemption sets equal to the portal's active exemptions.

The change feed is the authority on order. The agent holds a cursor (the last change applied)
and the exemptions it reflects; each page of changes becomes one nftables transaction, and the
cursor is saved only after the kernel took it. Whatever can't be followed — a gap in the
sequence, a reset (changes pruned, or the portal restored from a backup), a failed transaction, an unreadable
state file — is healed the same way: a fresh snapshot replacing the whole table.

When the portal can't be reached, the set in force stays (fail static) and the agent retries
with backoff. When the key is refused, it says so loudly and either keeps the set (fail-static)
or empties it, so that port 25 is closed for everyone (fail-closed).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from portal.agent.client import (
    BadFeed,
    Change,
    ChangePage,
    KeyRefused,
    PortalClient,
    PortalError,
    Unreachable,
)
from portal.agent.config import FAIL_CLOSED, Config
from portal.agent.nft import (
    Elements,
    Network,
    NftError,
    NftRunner,
    element,
    empty_sets,
    ensure_table,
    replace_table,
    run_nft,
    update_sets,
)
from portal.agent.state import CorruptState, SavedState, StateFile

log = logging.getLogger("portal.agent")
SHOWN = 10  # blocks named in one log line; the rest are counted


class FeedGap(Exception):
    """The changes don't continue from our cursor: some were missed."""


def _blocks(networks: Iterable[Network]) -> str:
    names = sorted({element(n) for n in networks})
    if not names:
        return "-"
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


class Agent:
    def __init__(self, config: Config, *, nft: NftRunner = run_nft) -> None:
        self.config = config
        self.nft = nft
        self.client = PortalClient(
            config.portal_url,
            config.key,
            timeout=config.timeout_seconds,
            ca_file=config.ca_file,
            page_size=config.page_size,
        )
        self.state_file = StateFile(config.state_dir)
        self.wake = threading.Event()
        self._lock = threading.RLock()
        self.exemptions: dict[str, Network] = {}
        self.cursor: int | None = None
        self.need_snapshot = True
        self.emptied = False  # failed closed: the sets are empty on purpose
        self.installed = False  # this process put a known set in the kernel
        self.fell_back = False  # the portal failed before the first snapshot; the fallback is in place
        self.saved: SavedState | None = None
        self.key_refused = False
        self.last_sync: float | None = None  # time.monotonic() of the last successful sync
        self.last_sync_at: datetime | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.retry_after: float | None = None
        # Called before a transaction that makes the counting sets anew (telemetry keeps what
        # they counted until then).
        self.before_recreate: Callable[[], None] = lambda: None

    # Start and the loop ------------------------------------------------------------------

    def start(self) -> None:
        """Read the saved state and make sure the table exists. Raises NftError if nftables
        can't be used at all (not root, nft missing), which no retry would mend."""
        self.saved = self._load_saved()
        self.nft(ensure_table(self.config.names, self.config.counting))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self.config.poll_seconds if self.sync_once() else self._backoff()
            self.wake.wait(delay)
            self.wake.clear()

    def request_snapshot(self) -> None:
        with self._lock:
            self.need_snapshot = True
        self.wake.set()

    def sync_once(self) -> bool:
        try:
            self.sync()
        except PortalError as exc:
            self._portal_failed(exc)
            return False
        except NftError as exc:
            self._note_failure(f"nftables refused the transaction: {exc}")
            log.error("nftables refused the transaction, the set in force is unchanged: %s", exc)
            self.need_snapshot = True
            return False
        with self._lock:
            if self.key_refused:
                log.warning("the portal accepts the agent's key again")
            self.key_refused = False
            self.failures = 0
            self.retry_after = None
            self.last_error = None
            self.last_sync = time.monotonic()
            self.last_sync_at = datetime.now(UTC)
        return True

    def sync(self) -> None:
        """Catch up with the portal. Raises PortalError or NftError."""
        snapshots = 0
        while True:
            if self.need_snapshot:
                snapshots += 1
                if snapshots > 2:
                    raise BadFeed("the feed did not settle after two snapshots; trying again later")
                self._load_snapshot()
            cursor = self.cursor
            assert cursor is not None
            page = self.client.changes(after=cursor)
            if page is None:
                return
            if page.reset:
                log.warning(
                    "the portal can't continue from our cursor %d (its feed is at %d: the changes "
                    "after our cursor were pruned, or the portal was restored from a backup); "
                    "taking a snapshot",
                    cursor,
                    page.latest,
                )
                self.need_snapshot = True
                continue
            try:
                self._apply_page(page)
            except FeedGap as exc:
                log.warning("%s; taking a snapshot", exc)
                self.need_snapshot = True
                continue
            except NftError as exc:
                log.error("nftables refused a batch (%s); healing with a snapshot", exc)
                self.need_snapshot = True
                continue
            if not page.has_more or self.cursor == cursor:  # done, or a page that moved nothing
                return

    # Applying -------------------------------------------------------------------------------

    def _load_snapshot(self) -> None:
        snapshot = self.client.snapshot()
        with self._lock:
            self.before_recreate()
            self.nft(
                replace_table(
                    self.config.names, Elements.of(snapshot.exemptions.values()), self.config.counting
                )
            )
            before, after = set(self.exemptions.values()), set(snapshot.exemptions.values())
            if self.installed:
                change = f"added {_blocks(after - before)}; removed {_blocks(before - after)}"
            else:  # what the kernel held before is not known
                change = f"in force: {_blocks(after)}"
            self.exemptions = dict(snapshot.exemptions)
            self.cursor = snapshot.cursor
            self.need_snapshot = self.emptied = False
            self.installed = True
            log.info("loaded a snapshot: %d exemptions (%s), cursor %d", len(after), change, self.cursor)
            self._save()

    def _apply_page(self, page: ChangePage) -> None:
        with self._lock:
            self._apply_changes(page.changes)

    def _apply_changes(self, changes: list[Change]) -> None:
        """Apply changes that continue from the cursor, as one transaction. Raises FeedGap."""
        cursor = self.cursor
        assert cursor is not None
        fresh = [c for c in changes if c.seq > cursor]  # a webhook may have applied some already
        for expected, change in enumerate(fresh, start=cursor + 1):
            if change.seq != expected:
                raise FeedGap(f"the change feed jumps from {expected - 1} to {change.seq}")
        if fresh:
            self._commit(self._after(fresh), cursor=fresh[-1].seq, what=f"{len(fresh)} change(s)")

    def _after(self, changes: list[Change]) -> dict[str, Network]:
        exemptions = dict(self.exemptions)
        for change in changes:
            if change.op == "add":
                exemptions[change.exemption] = change.block
            else:
                exemptions.pop(change.exemption, None)
        return exemptions

    def _commit(self, exemptions: dict[str, Network], *, cursor: int | None, what: str) -> None:
        before, after = set(self.exemptions.values()), set(exemptions.values())
        text = update_sets(self.config.names, Elements.of(before), Elements.of(after))
        if text:
            self.nft(text)
        self.exemptions = exemptions
        self.cursor = cursor
        log.info(
            "applied %s: added %s; removed %s; cursor %s; %d exemptions in force",
            what,
            _blocks(after - before),
            _blocks(before - after),
            cursor,
            len(exemptions),
        )
        self._save()

    def on_webhook(self, change: Change) -> None:
        """Apply a change announced by a webhook now. The change feed still decides the order:
        the next change after the cursor advances it; one from further ahead is applied at once
        but the cursor waits for the feed, which is asked right away."""
        with self._lock:
            if not self.installed or self.cursor is None or self.need_snapshot:
                self.wake.set()
                return
            if change.seq <= self.cursor:
                return
            try:
                if change.seq == self.cursor + 1:
                    self._apply_changes([change])
                    return
                self._commit(
                    self._after([change]), cursor=self.cursor, what=f"webhook #{change.seq} ahead of the feed"
                )
            except NftError as exc:
                log.error("nftables refused a webhook's change (%s); healing with a snapshot", exc)
                self.need_snapshot = True
        self.wake.set()

    # Failures -------------------------------------------------------------------------------

    def _portal_failed(self, exc: PortalError) -> None:
        self._note_failure(str(exc))
        if isinstance(exc, Unreachable):
            self.retry_after = exc.retry_after
        if isinstance(exc, KeyRefused):
            with self._lock:
                self.key_refused = True
            if self.config.fail_mode == FAIL_CLOSED:
                self._fail_closed(exc)
            else:
                log.critical(
                    "%s. Keeping the %d exemptions in force (fail-static). Give the agent a valid "
                    "enforcement key (manage.py create_api_key --scope enforcement) and restart it.",
                    exc,
                    len(self.exemptions),
                )
        else:
            log.warning("%s; the set in force stays, trying again", exc)
        if not self.installed and not self.fell_back:
            self.fell_back = True
            self._install_saved()

    def _note_failure(self, message: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = message

    def _fail_closed(self, exc: KeyRefused) -> None:
        with self._lock:
            if not self.emptied:
                try:
                    self.before_recreate()
                    self.nft(empty_sets(self.config.names, self.config.counting))
                except NftError as nft_error:
                    log.critical("%s, and emptying the sets failed too: %s", exc, nft_error)
                    return
                self.exemptions, self.cursor = {}, None
                self.emptied = self.installed = self.need_snapshot = True
                self._save()
        log.critical(
            "%s. FAIL-CLOSED: the exemption sets are empty, port 25 is dropped for every source "
            "until the portal accepts the key again.",
            exc,
        )

    def _install_saved(self) -> None:
        """The portal didn't answer at start: enforce the set saved last time, if there is one;
        otherwise the kernel keeps what it has (the table is empty if it was just created)."""
        saved = self.saved
        with self._lock:
            if saved is None:
                log.warning("no saved state to fall back on; the sets in the kernel stay as they are")
                return
            try:
                self.before_recreate()
                self.nft(
                    replace_table(
                        self.config.names, Elements.of(saved.exemptions.values()), self.config.counting
                    )
                )
            except NftError as exc:
                log.error("could not restore the saved set: %s", exc)
                return
            self.exemptions = dict(saved.exemptions)
            self.installed = True
            log.warning(
                "enforcing the %d exemptions saved at %s until the portal answers",
                len(saved.exemptions),
                datetime.fromtimestamp(saved.saved_at, UTC).isoformat(timespec="seconds"),
            )

    def _backoff(self) -> float:
        delay = min(self.config.max_backoff_seconds, self.config.poll_seconds * 2.0 ** min(self.failures, 20))
        delay *= random.uniform(0.75, 1.0)  # noqa: S311 - jitter spreads retries, it guards nothing
        if self.retry_after is not None:
            delay = max(delay, min(self.retry_after, self.config.max_backoff_seconds))
        return delay

    # State file -----------------------------------------------------------------------------

    def _load_saved(self) -> SavedState | None:
        try:
            saved = self.state_file.load()
        except CorruptState as exc:
            try:
                where = f"moved it to {self.state_file.set_aside()}"
            except OSError as error:
                where = f"could not move it aside ({error.strerror})"
            log.warning("the state file is corrupt (%s); %s, a snapshot will heal it", exc, where)
            return None
        if saved is not None and saved.portal != self.config.portal_url:
            log.warning("the state file belongs to %s, not this portal; ignoring it", saved.portal)
            return None
        return saved

    def _save(self) -> None:
        state = SavedState(portal=self.config.portal_url, cursor=self.cursor, exemptions=self.exemptions)
        try:
            self.state_file.save(state)
        except OSError as exc:
            log.error("could not save the cursor to %s: %s", self.state_file.path, exc)

    # Health ---------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            age = None if self.last_sync is None else time.monotonic() - self.last_sync
            if self.key_refused:
                status = "key_refused"
            elif age is None:
                status = "starting"
            elif age > self.config.stale_seconds:
                status = "stale"
            else:
                status = "ok"
            elements = Elements.of(self.exemptions.values())
            body = {
                "status": status,
                "last_sync_age_seconds": None if age is None else round(age, 3),
                "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
                "stale_after_seconds": self.config.stale_seconds,
                "cursor": self.cursor,
                "exemptions": len(self.exemptions),
                "set_elements": {"ipv4": len(elements.v4), "ipv6": len(elements.v6)},
                "fail_mode": self.config.fail_mode,
                "failed_closed": self.emptied,
                "last_error": self.last_error,
                "not_modified": self.client.not_modified,
            }
        return (200 if status == "ok" else 503), body
