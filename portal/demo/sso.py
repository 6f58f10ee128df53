"""Demo SSO for `make demo`: oidc-provider-mock on loopback, knowing the demo people, so that
"Sign in with Demo SSO" works for a newcomer with no identity provider to set up.

The provider (a development requirement) asks for a subject and signs that person in; the demo
people's subjects are their email addresses, and their claims say which tenant they belong to
or which staff groups they are in.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from portal.workflows.provisioning import TenantSpec

EXECUTABLE = Path(sys.executable).with_name("oidc-provider-mock")


def people(tenants: Sequence[TenantSpec], staff: Sequence[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    claims: list[dict[str, Any]] = [
        {"sub": email, "email": email, "email_verified": True, "tenants": [spec.external_id], "amr": ["pwd"]}
        for spec in tenants
        for email in spec.members
    ]
    # The demo issuer vouches for a second factor, as a company identity provider with MFA would.
    claims += [
        {"sub": email, "email": email, "groups": roles, "amr": ["pwd", "mfa"]} for email, roles in staff
    ]
    return claims


def settings_for(issuer: str) -> tuple[dict[str, object], dict[str, object]]:
    """SSO_CUSTOMERS and SSO_STAFF for the demo issuer (see sso_config in portal/settings.py)."""
    common: dict[str, object] = {
        "issuer": issuer,
        "client_secret": "demo-secret",
        "scopes": "openid email profile",
        "email_claim": "email",
        "tenant_claim": "tenants",
        "groups_claim": "groups",
        "mfa_amr": ["mfa"],
        "mfa_acr": [],
    }
    customers = {
        **common,
        "name": "Demo SSO (customers)",
        "client_id": "demo-customers",
        "role_map": {},
        "require_mfa": False,
    }
    staff = {
        **common,
        "name": "Demo SSO (staff)",
        "client_id": "demo-staff",
        "role_map": {role: role for role in ("reviewer", "approver", "admin")},
        "require_mfa": True,
    }
    return customers, staff


@contextmanager
def running(claims: list[dict[str, Any]]) -> Iterator[str | None]:
    """The issuer URL while the provider runs; None where it isn't installed (runtime-only venv)."""
    if not EXECUTABLE.exists():
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(EXECUTABLE), "--port", str(port), "--require-nonce", "true"]
    for person in claims:
        command += ["--user-claims", json.dumps(person)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - our own venv's executable
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=1):  # noqa: S310 - loopback
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    yield None
                    return
                time.sleep(0.1)
        yield issuer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
