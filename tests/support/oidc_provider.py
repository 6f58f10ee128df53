"""oidc-provider-mock as a real process on loopback: discovery, JWKS, authorize and token endpoints.

    provider = OidcProvider.start()
    provider.set_user("alice", {"email": "alice@acme.example", "tenants": ["acme-1"]})
    callback_url = provider.approve(authorize_url, "alice")   # what the browser would be sent to

Each process signs with a fresh key, so `restart()` on the same port is a key rotation.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

EXECUTABLE = Path(sys.executable).with_name("oidc-provider-mock")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OidcProvider:
    port: int
    args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, *args: str) -> OidcProvider:
        provider = cls(port=free_port(), args=args)
        provider.run()
        return provider

    def run(self) -> None:
        command = [str(EXECUTABLE), "--port", str(self.port), "--require-nonce", "true", *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc-provider-mock did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.run()

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=5).raise_for_status()

    def approve(self, authorize_url: str, sub: str) -> str:
        """Sign `sub` in on the provider's form; returns where it redirects the browser."""
        assert authorize_url.startswith(self.issuer), authorize_url
        response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]

    def deny(self, authorize_url: str) -> str:
        response = requests.post(authorize_url, data={"action": "deny"}, allow_redirects=False, timeout=5)
        return response.headers["Location"]
