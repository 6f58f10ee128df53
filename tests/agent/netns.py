"""Throwaway network namespaces for tests that need real packets and a real nftables.

Every namespace gets a name unique to the run, every link is created directly inside the
namespaces it joins (nothing is added to the machine's own namespace, so test addresses can't
leak or clash), and deleting the namespaces removes everything. A socket belongs to the
namespace it was created in, so the test process makes its sockets inside a namespace by
switching one thread into it (`setns`), which leaves the rest of the process where it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import unittest
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def skip_or_fail(reason: str) -> unittest.SkipTest:
    """Skip, unless REQUIRE_NETNS=1 says this machine must run these tests."""
    if os.environ.get("REQUIRE_NETNS") == "1":
        raise RuntimeError(f"REQUIRE_NETNS=1 but {reason}")
    print(f"\nskipping real-packet tests: {reason}")
    return unittest.SkipTest(reason)


def missing_capability() -> str | None:
    if not hasattr(os, "setns"):
        return "this Python has no os.setns (Linux, Python 3.12+)"
    if os.geteuid() != 0:
        return "network namespaces and nftables need root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install {package})"
    return None


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


@contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Switch the calling thread into `namespace`, and back afterwards."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        os.setns(target, os.CLONE_NEWNET)
        try:
            yield
        finally:
            os.setns(home, os.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


def inside[T](namespace: str, function: Callable[[], T]) -> T:
    """Run `function` in a fresh thread inside `namespace` and return what it returns."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            with entered(namespace):
                result.append(function())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class Lab:
    """Namespaces named after their role, with a suffix unique to this run."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def name(self, role: str) -> str:
        return f"eep-{role}-{self.suffix}"

    def add(self, role: str) -> str:
        name = self.name(role)
        run("ip", "netns", "add", name)
        self.created.append(name)
        self.ip(role, "link", "set", "lo", "up")
        return name

    def ip(self, role: str, *args: str) -> str:
        return run("ip", "-n", self.name(role), *args)

    def sh(self, role: str, *args: str) -> str:
        return run("ip", "netns", "exec", self.name(role), *args)

    def link(
        self, a: str, a_if: str, a_addrs: tuple[str, ...], b: str, b_if: str, b_addrs: tuple[str, ...]
    ) -> None:
        """A veth pair between two namespaces, with addresses (DAD off: usable at once)."""
        run(
            "ip",
            "link",
            "add",
            "name",
            a_if,
            "netns",
            self.name(a),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            self.name(b),
        )
        for role, interface, addresses in ((a, a_if, a_addrs), (b, b_if, b_addrs)):
            for address in addresses:
                extra = ("nodad",) if ":" in address else ()
                self.ip(role, "address", "add", address, "dev", interface, *extra)
            self.ip(role, "link", "set", interface, "up")

    def delete_all(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
        self.created.clear()


def set_elements(namespace: str, table: str, set_name: str) -> set[str]:
    """What the kernel holds in an nftables set, written as the agent writes elements."""
    out = run("ip", "netns", "exec", namespace, "nft", "-j", "list", "set", "inet", table, set_name)
    (entry,) = [item["set"] for item in json.loads(out)["nftables"] if "set" in item]
    elements = set()
    for item in entry.get("elem", []):
        if isinstance(item, dict) and "prefix" in item:
            elements.add(f"{item['prefix']['addr']}/{item['prefix']['len']}")
        else:
            elements.add(str(item))
    return elements
