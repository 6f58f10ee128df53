"""The persisted cursor and the set it reflects, written after each successful apply.

The file is replaced atomically (write, fsync, rename), so a crash leaves the old version or the
new one. Anything unreadable is set aside as `state.json.corrupt` and healed with a snapshot.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.agent.client import BadFeed, parse_block
from portal.agent.nft import Network

FORMAT = "egress-exemption-agent-state/1"


class CorruptState(Exception):
    pass


@dataclass(frozen=True)
class SavedState:
    portal: str
    # None after failing closed: the set was emptied on purpose and only a snapshot may refill it.
    cursor: int | None
    exemptions: dict[str, Network]
    saved_at: float = 0.0


def _parse(data: Any) -> SavedState:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptState(f"it is not a {FORMAT} document")
    cursor = data.get("cursor")
    if cursor is not None and (not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0):
        raise CorruptState(f"its cursor {cursor!r} is not a whole number")
    portal, saved_at, exemptions = data.get("portal"), data.get("saved_at", 0.0), data.get("exemptions")
    if (
        not isinstance(portal, str)
        or not isinstance(saved_at, int | float)
        or not isinstance(exemptions, dict)
    ):
        raise CorruptState("it lacks the portal, the time or the exemptions")
    try:
        blocks = {str(id_): parse_block(block) for id_, block in exemptions.items()}
    except BadFeed as exc:
        raise CorruptState(str(exc)) from None
    return SavedState(portal=portal, cursor=cursor, exemptions=blocks, saved_at=float(saved_at))


class StateFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "state.json"

    def load(self) -> SavedState | None:
        """The saved state, or None if there is none. Raises CorruptState."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptState(f"it can't be read ({exc})") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CorruptState(f"it is not JSON ({exc})") from None
        return _parse(data)

    def set_aside(self) -> Path:
        """Keep a corrupt file for whoever investigates, out of the way of the next save."""
        aside = self.path.with_name(self.path.name + ".corrupt")
        os.replace(self.path, aside)
        return aside

    def save(self, state: SavedState) -> None:
        body = json.dumps(
            {
                "format": FORMAT,
                "portal": state.portal,
                "cursor": state.cursor,
                "saved_at": time.time(),
                "exemptions": {id_: str(block) for id_, block in sorted(state.exemptions.items())},
            },
            separators=(",", ":"),
        ).encode()
        write_atomically(self.path, body)


def write_atomically(path: Path, body: bytes) -> None:
    """A crash leaves the old version or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as file:
        file.write(body)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
