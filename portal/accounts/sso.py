"""Single sign-on configurations (OpenID Connect) and what their claims say about a person.

There are at most two: `customers` (people of the provider's customer accounts, whose tenants come
from a claim) and `staff` (the abuse team, whose roles come from a groups claim). Each is built
from the SSO_CUSTOMERS / SSO_STAFF settings; the two may name the same issuer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from portal.accounts.models import STAFF_ROLES

CUSTOMERS = "customers"
STAFF = "staff"


@dataclass(frozen=True)
class SsoProvider:
    key: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    email_claim: str = "email"
    tenant_claim: str = "tenants"
    groups_claim: str = "groups"
    role_map: Mapping[str, str] = field(default_factory=dict)
    require_mfa: bool = False
    mfa_amr: tuple[str, ...] = ("mfa",)
    mfa_acr: tuple[str, ...] = ()

    @property
    def for_staff(self) -> bool:
        return self.key == STAFF

    def proves_mfa(self, claims: Mapping[str, Any]) -> bool:
        """Whether the ID token says the issuer checked a second factor (RFC 8176 `amr`, or `acr`)."""
        amr = claims.get("amr")
        methods = {amr} if isinstance(amr, str) else set(amr) if isinstance(amr, list) else set()
        return bool(methods & set(self.mfa_amr)) or (bool(self.mfa_acr) and claims.get("acr") in self.mfa_acr)

    def tenant_ids(self, claims: Mapping[str, Any]) -> list[str]:
        return _strings(claims.get(self.tenant_claim))

    def roles(self, claims: Mapping[str, Any]) -> set[str]:
        """The portal roles the groups claim maps to; groups the mapping doesn't name give none."""
        groups = _strings(claims.get(self.groups_claim))
        return {self.role_map[g] for g in groups if self.role_map.get(g) in STAFF_ROLES}


def _strings(value: object) -> list[str]:
    # Issuers send a list, a single string, or (some mappers) a space-separated string.
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


def provider(key: str) -> SsoProvider | None:
    config = getattr(settings, f"SSO_{key.upper()}", None) if key in (CUSTOMERS, STAFF) else None
    if not config:
        return None
    return SsoProvider(
        key=key,
        name=config["name"],
        issuer=config["issuer"],
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        scopes=config["scopes"],
        email_claim=config["email_claim"],
        tenant_claim=config["tenant_claim"],
        groups_claim=config["groups_claim"],
        role_map=dict(config["role_map"]),
        require_mfa=config["require_mfa"],
        mfa_amr=tuple(config["mfa_amr"]),
        mfa_acr=tuple(config["mfa_acr"]),
    )


def configured() -> list[SsoProvider]:
    return [p for key in (CUSTOMERS, STAFF) if (p := provider(key)) is not None]


def local_login_allowed(username: str) -> bool:
    """Passwords work for everyone unless LOCAL_LOGIN is off; then only for the break-glass admin."""
    if settings.LOCAL_LOGIN:
        return True
    return bool(settings.BREAK_GLASS_ADMIN) and username.strip().lower() == settings.BREAK_GLASS_ADMIN
