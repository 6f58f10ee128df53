"""Debian's rbldnsd serving a zone file on loopback, for tests that compare DNS with the parser.

    with serving(path, dataset="ip4set") as server:
        server.query("2.0.0.127", "A")

Tests skip (saying why) when rbldnsd is not installed, unless REQUIRE_RBLDNSD=1, as in CI, where a
missing binary must fail rather than silently test nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

ZONE = "zone.test"


def binary() -> str:
    """The rbldnsd path, or skip/fail the calling test."""
    found = shutil.which("rbldnsd") or next(
        (path for path in ("/usr/sbin/rbldnsd", "/sbin/rbldnsd") if os.access(path, os.X_OK)), None
    )
    if found:
        return found
    reason = "rbldnsd is not installed (apt-get install rbldnsd)"
    if os.environ.get("REQUIRE_RBLDNSD") == "1":
        raise AssertionError(f"{reason}, and REQUIRE_RBLDNSD=1")
    print(f"skipping: {reason}")
    raise unittest.SkipTest(reason)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    zone: str = ZONE

    def query(self, name: str, rdtype: str) -> list[str]:
        """Answers for `name` under the zone: [] for NXDOMAIN or no data, errors raise."""
        request = dns.message.make_query(f"{name}.{self.zone}.", rdtype)
        response = dns.query.udp(request, "127.0.0.1", port=self.port, timeout=2.0)
        if response.rcode() == dns.rcode.NXDOMAIN:
            return []
        if response.rcode() != dns.rcode.NOERROR:
            raise AssertionError(f"rbldnsd answered {dns.rcode.to_text(response.rcode())} for {name}")
        wanted = dns.rdatatype.from_text(rdtype)
        answers = []
        for rrset in response.answer:
            if rrset.rdtype != wanted:
                continue
            for rdata in rrset:
                if wanted == dns.rdatatype.TXT:
                    answers.append(b"".join(rdata.strings).decode())
                else:
                    answers.append(rdata.to_text())
        return sorted(answers)


@contextmanager
def serving(path: Path, dataset: str = "ip4set", zone: str = ZONE) -> Iterator[Server]:
    """rbldnsd in the foreground (-n) serving `path` as `zone`, stopped on exit."""
    executable = binary()
    port = free_udp_port()
    # As root, rbldnsd reads the data after switching to an unprivileged user, who cannot read a
    # test's private temporary directory; it serves its own world-readable copy instead.
    root = Path(tempfile.mkdtemp(prefix="rbldnsd-"))
    root.chmod(0o755)
    shutil.copyfile(path, root / "zone")
    (root / "zone").chmod(0o644)
    command = [executable, "-n", "-q", "-r", str(root), "-b", f"127.0.0.1/{port}"]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    command.append(f"{zone}:{dataset}:zone")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = Server(port, zone)
    try:
        _wait_until_answering(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        shutil.rmtree(root)


def _wait_until_answering(server: Server, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(f"rbldnsd exited with {process.returncode}: {output}")
        try:
            # NXDOMAIN or an answer means the data is loaded; SERVFAIL means it is not (yet).
            probe = dns.message.make_query(f"0.0.0.0.{server.zone}.", "A")
            response = dns.query.udp(probe, "127.0.0.1", port=server.port, timeout=0.2)
            if response.rcode() != dns.rcode.SERVFAIL:
                return
            time.sleep(0.05)
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    raise AssertionError(f"rbldnsd did not serve the zone on port {server.port} within {timeout} s")
