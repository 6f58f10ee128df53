"""The one way the portal makes outbound HTTP requests (webhooks): SSRF-safe and bounded.

The host is resolved once; every address it resolves to must be global (not loopback, private,
link-local — including 169.254.169.254 and fd00:ec2::254 —, multicast, reserved, or an
IPv4-mapped form of those) unless it falls in an allow-listed network; then the connection goes
to exactly that checked address, so DNS rebinding can't redirect it. Redirects are never
followed. Only 2xx is success.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    duration_ms: int


@dataclass(frozen=True)
class Policy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_response_bytes: int = 64 * 1024


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_url(url: str, policy: Policy) -> tuple[str, str, int, str]:
    """Validate a URL's form; returns (scheme, host, port, path). Raises TransportError."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TransportError(f"Use an https:// URL (got {parts.scheme or 'no'} scheme).", permanent=True)
    if parts.username or parts.password:
        raise TransportError(
            "Put no user name or password in the URL; the signature authenticates us.", permanent=True
        )
    host = parts.hostname
    if not host:
        raise TransportError("The URL has no host name.", permanent=True)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TransportError("The URL's port is not a number from 1 to 65535.", permanent=True) from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


def resolve(host: str, port: int, scheme: str, policy: Policy) -> IPAddress:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransportError(f"Can't resolve {host}: {exc.strerror}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise TransportError(f"{host} has no addresses")
    for address in addresses:
        allowed = any(address in network for network in policy.allowed_networks)
        if not allowed and not is_public(address):
            raise TransportError(
                f"{host} resolves to {address}, a non-public address; add its network to "
                "WEBHOOK_ALLOWED_NETWORKS to deliver there.",
                permanent=True,
            )
        if scheme == "http" and not (allowed and policy.allow_http):
            raise TransportError(
                "Plain http:// is only allowed to networks in WEBHOOK_ALLOWED_NETWORKS with "
                "WEBHOOK_ALLOW_HTTP on; use https://.",
                permanent=True,
            )
    return addresses[0]


class _CheckedHTTPConnection(http.client.HTTPConnection):
    """Resolves and checks the host each time it connects, then connects to that very address.

    http.client reopens a connection the server has closed by calling connect() again, so a
    reused connection is checked exactly as a new one: DNS can't move it somewhere private.
    """

    def __init__(self, scheme: str, host: str, port: int, policy: Policy) -> None:
        super().__init__(host, port, timeout=policy.connect_timeout)
        self._scheme = scheme
        self._policy = policy

    def connect(self) -> None:
        address = resolve(self.host, self.port, self._scheme, self._policy)
        self.sock = socket.create_connection((str(address), self.port), self._policy.connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _CheckedHTTPSConnection(_CheckedHTTPConnection):
    """The same, verifying the certificate of the host name (not of the address)."""

    _context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        assert self.sock is not None
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


# A request on a kept-alive connection can meet the server's close of that idle connection;
# sent again once on a fresh connection, as urllib3 and httpx do (receivers dedupe by webhook-id).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Pool:
    """Kept-alive HTTP/1.1 connections to one origin (scheme, host, port), for one policy.

    Safe to share between threads; each request takes an idle connection or opens one.
    """

    def __init__(self, url: str, policy: Policy, max_idle: int = 4) -> None:
        self.scheme, self.host, self.port, _ = check_url(url, policy)
        self.policy = policy
        self.max_idle = max_idle
        self.last_used = time.monotonic()
        self._idle: list[_CheckedHTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        scheme, host, port, path = check_url(url, self.policy)
        if (scheme, host, port) != (self.scheme, self.host, self.port):
            raise TransportError(f"{url} is not on this pool's origin {self.host}:{self.port}")
        self.last_used = time.monotonic()
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._exchange(connection, path, body, headers)
            except _Stale:
                pass
        return self._exchange(self._open(), path, body, headers)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _open(self) -> _CheckedHTTPConnection:
        kind = _CheckedHTTPSConnection if self.scheme == "https" else _CheckedHTTPConnection
        return kind(self.scheme, self.host, self.port, self.policy)

    def _exchange(
        self, connection: _CheckedHTTPConnection, path: str, body: bytes, headers: dict[str, str]
    ) -> Response:
        reused = connection.sock is not None
        policy = self.policy
        start = time.monotonic()
        deadline = start + policy.total_timeout
        cut = threading.Event()
        watch: _Watch | None = None
        keep = False
        try:
            if not reused:
                connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(policy.total_timeout)
            # A socket timeout bounds each read, not the exchange: a receiver trickling a byte
            # at a time could hold the sender for ever. At the deadline the socket is shut down.
            watch = _watchdog.watch(deadline, connection.sock, cut)
            host_header = self.host if ":" not in self.host else f"[{self.host}]"
            default_port = 443 if self.scheme == "https" else 80
            connection.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
            connection.putheader(
                "Host", host_header if self.port == default_port else f"{host_header}:{self.port}"
            )
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                connection.putheader(name, value)
            try:
                connection.endheaders(body)
                response = connection.getresponse()
            except _STALE:
                if reused and not cut.is_set():
                    raise _Stale from None
                raise
            data = _read_bounded(response, policy.max_response_bytes, deadline)
            if cut.is_set():
                raise TimeoutError  # the body may have been cut short
            # Reusable only once the whole answer is read and the server keeps the connection.
            keep = response.isclosed() and not response.will_close
        except TimeoutError:
            raise TransportError(f"No complete response within {policy.total_timeout:g}s (timeout)") from None
        except (OSError, http.client.HTTPException) as exc:
            if cut.is_set():
                raise TransportError(
                    f"No complete response within {policy.total_timeout:g}s (timeout)"
                ) from None
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            if watch is not None:
                watch.cancelled = True
            if keep:
                with self._lock:
                    keep = len(self._idle) < self.max_idle
                    if keep:
                        self._idle.append(connection)
            if not keep:
                connection.close()
        return Response(
            response.status,
            data,
            {k.lower(): v for k, v in response.getheaders()},
            int((time.monotonic() - start) * 1000),
        )


class _Stale(Exception):
    """A kept-alive connection the server had closed before our request reached it."""


def post(url: str, body: bytes, headers: dict[str, str], policy: Policy) -> Response:
    """One request on a connection of its own (a test event, a one-off)."""
    pool = Pool(url, policy, max_idle=0)
    return pool.post(url, body, headers)


@dataclass(order=True)
class _Watch:
    deadline: float
    sock: socket.socket = field(compare=False)
    cut: threading.Event = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _Watchdog:
    """One thread that shuts down the sockets of exchanges past their deadline.

    A timer thread per request cost more than a fast receiver's whole answer; deadlines of one
    policy only grow, so the thread is woken only for the rare one earlier than all it holds.
    """

    def __init__(self) -> None:
        self._heap: list[_Watch] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, sock: socket.socket, cut: threading.Event) -> _Watch:
        entry = _Watch(deadline, sock, cut)
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbound-watchdog", daemon=True)
                self._thread.start()
            earliest = self._heap[0].deadline if self._heap else None
            heapq.heappush(self._heap, entry)
            if earliest is None or deadline < earliest:
                self._wake.notify()
        return entry

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait(60)
                    continue
                wait = self._heap[0].deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                _cut(entry.sock, entry.cut)


_watchdog = _Watchdog()


def _cut(sock: socket.socket, cut: threading.Event) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: a blocked read returns at once.
    cut.set()
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _read_bounded(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    chunks, size = [], 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read1(min(8192, limit - size)) if hasattr(response, "read1") else response.read(8192)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
