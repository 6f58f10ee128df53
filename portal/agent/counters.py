"""Reading the counting sets (`nft -j list set`) and turning two readings into the new port-25
connections seen in between.

A counter only grows, except when its element is made anew: after an element's timeout, or
when the agent recreated the table. A smaller value is a reset, so the connections since are the
new value. An element that was made anew and has already grown past its old value is told by
its age: nft gives each element's remaining lifetime (`expires`), and the agent's rule never
refreshes it, so an element younger than the time since the last reading is new since then.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter

from portal.agent.nft import COUNTER_SETS, Names, NftError

SetLister = Callable[[str, str], bytes]  # (table, set) -> the output of `nft -j list set`
Tally = dict[str, list[int]]  # address -> [blocked, accepted]
VERDICTS = ("blocked", "accepted")

# nft writes its JSON in one fixed shape; matching it directly, and building the dicts with
# C-level iteration, is several times faster than json.loads, which needs ~300 ms for 100,000
# elements on a small gateway. Anything else (another nft version's spacing or key order, an
# element with its own timeout) is noticed by the count of "val" keys and parsed with json.
ELEMENT = re.compile(r'"val": "([0-9A-Fa-f.:]+)", "expires": (\d+), "counter": \{"packets": (\d+)')
SET_TIMEOUT = re.compile(r'"timeout":\s*(\d+)')
_address = itemgetter(0)
Element = tuple[str, str, str]  # (address, seconds left or "", packets) as nft printed them


@dataclass(frozen=True)
class SetReading:
    # Kept as nft's text: an unchanged counter (most of them) is told by comparing strings,
    # without converting 100,000 numbers every reading.
    elements: dict[str, Element] = field(default_factory=dict)
    timeout: int | None = None

    @classmethod
    def of(cls, packets: Mapping[str, int], ages: Mapping[str, int] = {}, timeout: int = 3600) -> SetReading:
        return cls(
            {a: (a, str(timeout - ages[a]) if a in ages else "", str(n)) for a, n in packets.items()},
            timeout,
        )

    @property
    def packets(self) -> dict[str, int]:
        return {address: int(element[2]) for address, element in self.elements.items()}


def parse_set(raw: bytes) -> SetReading:
    text = raw.decode()
    elem_at = text.find('"elem"')
    timeout_match = SET_TIMEOUT.search(text, 0, elem_at if elem_at >= 0 else len(text))
    if elem_at >= 0 and text.find('"timeout"', elem_at) >= 0:
        return _parse_set_json(raw)  # an element with a timeout of its own
    found = ELEMENT.findall(text)
    if len(found) != text.count('"val"'):
        return _parse_set_json(raw)
    return SetReading(
        dict(zip(map(_address, found), found, strict=True)),
        int(timeout_match[1]) if timeout_match else None,
    )


def _parse_set_json(raw: bytes) -> SetReading:
    try:
        document = json.loads(raw)
        (entry,) = [item["set"] for item in document["nftables"] if "set" in item]
    except (ValueError, KeyError, TypeError) as exc:
        raise NftError(f"nft -j list set gave something else than one set ({exc})") from None
    set_timeout = entry.get("timeout")
    elements: dict[str, Element] = {}
    for item in entry.get("elem", []):
        element = item.get("elem") if isinstance(item, dict) else None
        if not isinstance(element, dict) or not isinstance(element.get("counter"), dict):
            continue  # an element without a counter has counted nothing
        address = str(element.get("val"))
        packets = str(int(element["counter"].get("packets", 0)))
        expires, timeout = element.get("expires"), element.get("timeout", set_timeout)
        left = ""
        if isinstance(expires, int) and isinstance(timeout, int) and isinstance(set_timeout, int):
            left = str(expires + set_timeout - timeout)  # as if the element had the set's timeout
        elements[address] = (address, left, packets)
    return SetReading(elements, set_timeout if isinstance(set_timeout, int) else None)


def deltas(before: Mapping[str, Element], after: SetReading, elapsed: float) -> dict[str, int]:
    """The connections counted since `before` was read, `elapsed` seconds ago (at least)."""
    out: dict[str, int] = {}
    last_of = before.get
    # Made anew since the last reading if it is younger: fewer than this many seconds left.
    young = None if after.timeout is None else after.timeout - elapsed
    for address, element in after.elements.items():
        previous = last_of(address)
        if previous is None:
            if element[2] != "0":
                out[address] = int(element[2])
        elif previous[2] != element[2]:  # changed: rarely most of them
            packets, last = int(element[2]), int(previous[2])
            made_anew = packets < last or (young is not None and element[1] and int(element[1]) > young)
            out[address] = packets if made_anew else packets - last
    return out


def list_set(table: str, set_name: str) -> bytes:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv; the names were checked (Names)
            ["nft", "-j", "list", "set", "inet", table, set_name],  # noqa: S607 - nft from PATH, like run_nft
            capture_output=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        raise NftError("nft is not installed or not on PATH (apt-get install nftables).") from None
    except subprocess.TimeoutExpired:
        raise NftError("nft -j list set did not finish within 60 seconds.") from None
    if done.returncode != 0:
        raise NftError(done.stderr.decode(errors="replace").strip() or f"nft exited with {done.returncode}")
    return done.stdout


class CounterReader:
    """The four counting sets, read into the connections counted since the previous reading.

    The agent calls `before_recreate` just before a transaction that makes the sets anew, so
    that what they counted until then is kept rather than lost.
    """

    def __init__(
        self,
        names: Names,
        *,
        lister: SetLister = list_set,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.names = names
        self._lister, self._clock, self._now = lister, clock, now
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Element]] = {}
        self._last_read_end = clock()
        self._kept: Tally = {}
        self.since = now()  # the start of the interval the next `take` covers

    def take(self) -> tuple[datetime, datetime, Tally]:
        """(start, end, {address: [blocked, accepted]}) since the previous take. Raises NftError,
        after which nothing is lost: the next take covers the time since the last good one."""
        with self._lock:
            tally = self._read()
            for address, counts in self._kept.items():
                mine = tally.setdefault(address, [0, 0])
                mine[0] += counts[0]
                mine[1] += counts[1]
            self._kept = {}
            start, self.since = self.since, self._now()
            return start, self.since, tally

    def before_recreate(self) -> None:
        with self._lock:
            try:
                tally = self._read()
            except NftError:
                tally = {}  # the table may be gone already; nothing to keep then
            for address, counts in tally.items():
                kept = self._kept.setdefault(address, [0, 0])
                kept[0] += counts[0]
                kept[1] += counts[1]
            self._last = {}

    def _read(self) -> Tally:
        started = self._clock()
        elapsed = started - self._last_read_end
        readings = {name: parse_set(self._lister(self.names.table, name)) for name in COUNTER_SETS.values()}
        tally: Tally = {}
        for (verdict, _), name in COUNTER_SETS.items():
            index = VERDICTS.index(verdict)
            for address, delta in deltas(self._last.get(name, {}), readings[name], elapsed).items():
                tally.setdefault(address, [0, 0])[index] += delta
        self._last = {name: reading.elements for name, reading in readings.items()}
        self._last_read_end = self._clock()
        return tally
