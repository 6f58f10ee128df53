"""`python -m portal.agent flows FILE|DIR`: pmacct's JSON output (print plugin) to the portal's
telemetry API, for networks whose routers export NetFlow/IPFIX/sFlow rather than run the agent.

Each file's new complete lines become one report (`source: pmacct`): per source address, the
port-25 packets (or flows) counted, times the sampling rate. The forwarder remembers, per file,
how far it has sent; before a POST it saves the range and the sequence numbers it gives it, so
that after a crash it sends the same range under the same numbers, which the portal ignores if
it already has them. Re-running on a directory sends only what is new.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.agent.client import PortalError
from portal.agent.config import PREFIX, ConfigError, read_key
from portal.agent.nft import PORT
from portal.agent.outbox import Outbox, Poster
from portal.agent.report import AGENT_NAME, Report, default_agent_name
from portal.agent.state import write_atomically

log = logging.getLogger("portal.agent")
FORMAT = "egress-exemption-flows/1"
STAMP = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Counting:
    port: int = PORT
    rate: int = 1  # the exporter's sampling rate: 1 in `rate` packets was seen
    field: str = "packets"  # or "flows"
    bin_seconds: int = 60  # pmacct's print_history, when lines have no stamp_updated


def _stamp(value: object) -> datetime | None:
    # pmacct writes local time unless `timestamps_utc: true`, which the documented setup sets.
    try:
        return datetime.strptime(str(value), STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_lines(data: bytes, counting: Counting, fallback: datetime) -> Report:
    report = Report("pmacct", fallback, fallback, estimated=counting.rate > 1)
    starts: list[datetime] = []
    ends: list[datetime] = []
    skipped = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            entry: Any = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(entry, dict) or entry.get("event_type", "purge") != "purge":
            continue
        address, value = entry.get("ip_src"), entry.get(counting.field)
        if entry.get("port_dst", counting.port) != counting.port or not isinstance(address, str):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            skipped += 1
            continue
        report.add(address, observed=value * counting.rate)
        if inserted := _stamp(entry.get("stamp_inserted")):
            starts.append(inserted)
            updated = _stamp(entry.get("stamp_updated"))
            ends.append(updated or inserted + timedelta(seconds=counting.bin_seconds))
    if skipped:
        log.warning("skipped %d line(s) that are not pmacct JSON with %s", skipped, counting.field)
    if starts:
        report.start, report.end = min(starts), max(max(ends), min(starts))
    return report


class FlowState:
    """flows.json in the state directory: the last sequence number and, per file, the bytes sent
    and the range being sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sequence = 0
        self.files: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); move it away to start afresh.") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a {FORMAT} file; move it away to start afresh.")
        self.sequence, self.files = int(data["sequence"]), dict(data["files"])

    def save(self) -> None:
        body = {"format": FORMAT, "sequence": self.sequence, "files": self.files}
        write_atomically(self.path, json.dumps(body, indent=1, sort_keys=True).encode())

    # The Outbox's numbering, for reports it would number itself (the forwarder numbers its own).
    def allocate(self, count: int) -> int:
        self.sequence += count
        self.save()
        return self.sequence - count + 1

    def restart_after(self, stale: int) -> None:
        self.sequence = max(self.sequence, stale, int(datetime.now(UTC).timestamp()))
        self.save()


class Forwarder:
    def __init__(self, state: FlowState, outbox: Outbox, counting: Counting) -> None:
        self.state, self.outbox, self.counting = state, outbox, counting

    def files(self, target: Path) -> list[Path]:
        if target.is_file():
            return [target]
        found = [p for p in target.iterdir() if p.is_file() and not p.is_symlink() and p.name[0] != "."]
        # pmacct names files after their time bin (flows-%s.json): oldest first.
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def forward(self, target: Path, stop: threading.Event, *, give_up_after: int | None) -> int:
        """Send what is new in `target`; the number of reports the portal took."""
        sent = 0
        paths = self.files(target)
        if target.is_dir():
            present = {str(p.resolve()) for p in paths}
            for gone in [name for name in self.state.files if Path(name).parent == target.resolve()]:
                if gone not in present:
                    del self.state.files[gone]  # pmacct's files are rotated away; so is their memory
        for path in paths:
            if stop.is_set():
                break
            sent += self._forward_file(path, stop, give_up_after)
        return sent

    def _forward_file(self, path: Path, stop: threading.Event, give_up_after: int | None) -> int:
        name, stat = str(path.resolve()), path.stat()
        entry = self.state.files.get(name)
        if entry and entry["inode"] != stat.st_ino:
            log.warning("%s is a new file under an old name; reading it from the start", name)
            entry = None
        done = entry["done"] if entry else 0
        sending = entry.get("sending") if entry else None
        if sending is None and stat.st_size < done:
            log.warning("%s shrank below what was sent; reading it from the start", name)
            done = 0
        with open(path, "rb") as file:
            file.seek(done)
            data = file.read(sending["end"] - done if sending else -1)
        if sending is None:
            data = data[: data.rfind(b"\n") + 1]  # a line pmacct is still writing waits
        end = done + len(data)
        if end == done:
            return 0
        mtime = datetime.fromtimestamp(stat.st_mtime, UTC)
        batches = parse_lines(data, self.counting, mtime).batches(self.outbox.batch)
        if not any(b.counts for b in batches):
            self._finish(name, stat.st_ino, end)
            return 0
        if sending is None:
            self.state.sequence += len(batches)
            sending = {"end": end, "first": self.state.sequence - len(batches) + 1, "count": len(batches)}
            self.state.files[name] = {"inode": stat.st_ino, "done": done, "sending": sending}
            self.state.save()
        elif sending["count"] != len(batches):
            raise ConfigError(f"{name} changed under the forwarder; it can't be resent as it was.")
        for number, batch in enumerate(batches, start=sending["first"]):
            batch.sequence, batch.resend = number, entry is not None and entry.get("sending") is not None
            self.outbox.add(batch)
        if not self._drain(stop, give_up_after):
            return 0
        self._finish(name, stat.st_ino, end)
        addresses = sum(len(b.counts) for b in batches)
        log.info("sent %s: %d addresses in %d report(s)", name, addresses, len(batches))
        return len(batches)

    def _finish(self, name: str, inode: int, end: int) -> None:
        self.state.files[name] = {"inode": inode, "done": end, "sending": None}
        self.state.save()

    def _drain(self, stop: threading.Event, give_up_after: int | None) -> bool:
        while self.outbox.pending:
            if self.outbox.due():
                self.outbox.attempt()
            elif give_up_after is not None and self.outbox.failures >= give_up_after:
                raise PortalError(f"the portal did not take the report after {give_up_after} attempts")
            elif stop.wait(self.outbox.seconds_until_due()):
                return False
        return True


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portal.agent flows",
        description="Send pmacct's JSON output (print plugin) to the portal's telemetry API.",
    )

    def env(suffix: str, default: str) -> str:
        return environ.get(PREFIX + suffix, default)

    parser.add_argument("target", type=Path, help="A pmacct output file, or the directory of them.")
    parser.add_argument("--portal-url", default=env("PORTAL_URL", ""), help="[EEP_AGENT_PORTAL_URL]")
    parser.add_argument("--key-file", default=env("KEY_FILE", ""), help="[EEP_AGENT_KEY_FILE]")
    parser.add_argument(
        "--agent-name",
        default=env("FLOWS_NAME", default_agent_name("-pmacct")),
        help="Name this forwarder reports as, 1-64 of A-Z a-z 0-9 . _ - (default: HOSTNAME-pmacct).",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(env("STATE_DIR", "/var/lib/eep-agent")))
    parser.add_argument("--sampling-rate", type=int, default=1, help="1 in N packets sampled: counts × N.")
    parser.add_argument("--count", choices=("packets", "flows"), default="packets")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--bin-seconds", type=int, default=60, help="pmacct's print_history.")
    parser.add_argument("--follow", action="store_true", help="DIR: keep watching for new files.")
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--timeout-seconds", type=float, default=float(env("TIMEOUT_SECONDS", "10")))
    parser.add_argument("--max-backoff-seconds", type=float, default=float(env("MAX_BACKOFF_SECONDS", "300")))
    parser.add_argument(
        "--retries", type=int, default=8, help="Without --follow: give up after this many failures."
    )
    parser.add_argument("--ca-file", default=env("CA_FILE", "") or None)
    parser.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return parser


def main(
    argv: Sequence[str], environ: Mapping[str, str] = os.environ, stop: threading.Event | None = None
) -> int:
    args = _parser(environ).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    stop = stop or threading.Event()
    try:
        if not args.portal_url.startswith(("https://", "http://")):
            raise ConfigError("--portal-url must be the portal's http(s) URL.")
        if not AGENT_NAME.match(args.agent_name):
            raise ConfigError(f"--agent-name is 1-64 of A-Z a-z 0-9 . _ -, got {args.agent_name!r}.")
        if args.sampling_rate < 1:
            raise ConfigError("--sampling-rate is at least 1.")
        if not args.target.exists() or (args.follow and not args.target.is_dir()):
            raise ConfigError(f"{args.target} is not a file or directory (--follow needs a directory).")
        key = read_key(args.key_file, environ)
        state = FlowState(args.state_dir / "flows.json")
    except ConfigError as exc:
        print(f"portal.agent flows: {exc}", file=sys.stderr)
        return 2
    poster = Poster(args.portal_url, key, args.agent_name, timeout=args.timeout_seconds, ca_file=args.ca_file)
    outbox = Outbox(poster, state, max_backoff=args.max_backoff_seconds)
    counting = Counting(
        port=args.port, rate=args.sampling_rate, field=args.count, bin_seconds=args.bin_seconds
    )
    forwarder = Forwarder(state, outbox, counting)
    try:
        while True:
            forwarder.forward(args.target, stop, give_up_after=None if args.follow else args.retries)
            if not args.follow or stop.wait(args.poll_seconds):
                return 0
    except (PortalError, ConfigError) as exc:
        log.error("%s; what was not sent is sent by the next run", exc)
        return 1
