"""The one way the portal makes outbound HTTP requests (webhooks): SSRF-safe and bounded.

The host is resolved once; every address it resolves to must be global (not loopback, private,
link-local — including 169.254.169.254 and fd00:ec2::254 —, multicast, reserved, or an
IPv4-mapped form of those) unless it falls in an allow-listed network; then the connection goes
to exactly that checked address, so DNS rebinding can't redirect it. Redirects are never
followed. Only 2xx is success.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
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


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address while verifying the certificate of the host name."""

    def __init__(self, address: str, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ssl_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(raw, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], policy: Policy) -> Response:
    scheme, host, port, path = check_url(url, policy)
    address = resolve(host, port, scheme, policy)
    start = time.monotonic()
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = _PinnedHTTPSConnection(
            str(address), host, port, policy.connect_timeout, ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(str(address), port, timeout=policy.connect_timeout)
    deadline = start + policy.total_timeout
    cut = threading.Event()
    watchdog: threading.Timer | None = None
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(policy.total_timeout)
        # A socket timeout bounds each read, not the exchange: a receiver trickling a byte at a
        # time could hold the sender for ever. At the deadline the socket is shut down.
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _cut, (connection.sock, cut))
        watchdog.daemon = True
        watchdog.start()
        host_header = host if ":" not in host else f"[{host}]"
        default_port = 443 if scheme == "https" else 80
        connection.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host_header if port == default_port else f"{host_header}:{port}")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        data = _read_bounded(response, policy.max_response_bytes, deadline)
        if cut.is_set():
            raise TimeoutError  # the body may have been cut short
    except TimeoutError:
        raise TransportError(f"No complete response within {policy.total_timeout:g}s (timeout)") from None
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise TransportError(f"No complete response within {policy.total_timeout:g}s (timeout)") from None
        raise TransportError(f"{type(exc).__name__}: {exc}") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()
    return Response(
        response.status,
        data,
        {k.lower(): v for k, v in response.getheaders()},
        int((time.monotonic() - start) * 1000),
    )


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
