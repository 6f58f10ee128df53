"""A tiny authoritative DNS server for tests, benchmarks and the demo, run as a real process on
loopback. Not for production: it serves a fixed zone from a JSON file.

Zone data is JSON: {"name": {"A": ["..."], "TXT": ["..."]}, "other": "SERVFAIL"}. A name that
is absent is NXDOMAIN; a present name without the asked type is NODATA; "SERVFAIL" and
"REFUSED" answer with that rcode; "TIMEOUT" never answers. A name "*.suffix" answers for every
name under suffix that has no entry of its own. "_delay_ms" delays every reply.

    python -m portal.demo.dnsserver ZONE.json   # prints the UDP port it listens on, then serves
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

type Zone = dict[str, Any]


def _lookup(zone: Zone, name: str) -> Any:
    if name in zone:
        return zone[name]
    labels = name.split(".")
    for i in range(1, len(labels)):
        wildcard = "*." + ".".join(labels[i:])
        if wildcard in zone:
            return zone[wildcard]
    return None


def answer(zone: Zone, wire: bytes) -> bytes | None:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    name = question.name.to_text().rstrip(".").lower()
    rdtype = dns.rdatatype.to_text(question.rdtype)
    entry = _lookup(zone, name)
    if entry == "TIMEOUT":
        return None
    if entry in ("SERVFAIL", "REFUSED"):
        response.set_rcode(dns.rcode.from_text(entry))
    elif entry is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    else:
        values = entry.get(rdtype, [])
        if values:
            if rdtype == "TXT":
                values = ['"' + v.replace('"', '\\"') + '"' for v in values]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
    return response.to_wire()


def serve(zone: Zone) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    # "_delay_ms" stands in for a recursive resolver's latency (benchmarks); replies are then
    # sent from a timer so that the delay overlaps across queries, as it would on a network.
    delay = float(zone.get("_delay_ms", 0)) / 1000
    while True:
        wire, peer = sock.recvfrom(4096)
        try:
            reply = answer(zone, wire)
        except Exception as exc:  # a malformed packet must not stop the server
            print(f"dnsserver: {exc}", file=sys.stderr, flush=True)
            continue
        if reply is None:
            continue
        if delay:
            threading.Timer(delay, sock.sendto, (reply, peer)).start()
        else:
            sock.sendto(reply, peer)


@contextmanager
def running(zone: Zone) -> Iterator[int]:
    """Start the server in its own process; yields the UDP port on 127.0.0.1."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "zone.json"
        path.write_text(json.dumps(zone))
        process = subprocess.Popen(  # noqa: S603 - our own module, no user input
            [sys.executable, "-m", "portal.demo.dnsserver", str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            yield port
        finally:
            process.kill()
            process.wait()


if __name__ == "__main__":
    serve(json.loads(Path(sys.argv[1]).read_text()))
