"""Bearer API keys for Django REST Framework, and permissions by key scope."""

from __future__ import annotations

import base64
import binascii
import time
from threading import Lock
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.accounts.models import Actor, ApiKey, Scope, hash_api_key, is_staff_member
from portal.accounts.throttles import FailedAuthenticationThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User | AnonymousUser, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in (self.keyword, b"basic"):
            return None
        guard = FailedAuthenticationThrottle(request)
        guard.refuse_if_over()
        try:
            return self.check_key(header)
        except exceptions.AuthenticationFailed:
            guard.failed()
            raise

    def check_key(self, header: list[bytes]) -> tuple[User | AnonymousUser, ApiKey]:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; send 'Authorization: Bearer <key>'."
            )
        basic = header[0].lower() == b"basic"
        try:
            key = _password_of(header[1]) if basic else header[1].decode("ascii")
        except (UnicodeDecodeError, ValueError, binascii.Error):
            raise exceptions.AuthenticationFailed("The API key contains invalid characters.") from None
        api_key = ApiKey.authenticate(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if basic and api_key.scope != Scope.ENFORCEMENT:
            # Firewalls' list fetchers (Palo Alto EDL, FortiGate) can only send Basic credentials;
            # nothing else needs to, so other keys stay Bearer-only.
            raise exceptions.AuthenticationFailed("Send this key as 'Authorization: Bearer <key>'.")
        api_key.touch()
        user = api_key.created_by if api_key.created_by is not None else AnonymousUser()
        return user, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _password_of(credentials: bytes) -> str:
    """The password of HTTP Basic credentials (any user name): where firewalls put the key."""
    decoded = base64.b64decode(credentials, validate=True).decode("ascii")
    _, separator, password = decoded.partition(":")
    if not separator:
        raise ValueError("no password")
    return password


# Enforcement keys verified lately, by the HMAC of the whole key: (when, key). Bounded by the
# number of firewalls polling; entries older than API_KEY_CACHE_SECONDS are never used.
_verified: dict[str, tuple[float, ApiKey]] = {}
_verified_lock = Lock()


def enforcement_key(request: HttpRequest) -> ApiKey:
    """The enforcement key a feed request presents, checked as ApiKeyAuthentication and
    EnforcementScope check it, raising the same DRF exceptions, without DRF's request wrapping.

    A key verified within API_KEY_CACHE_SECONDS is taken from this process's memory without a
    query (so a revocation reaches every process within that time) and skips the failed-auth
    throttle: only the exact key gets there, and guessing a 256-bit key is what the throttle is
    for. Anything else takes the full path, throttle included.
    """
    header = get_authorization_header(cast(Request, request)).split()
    if not header or header[0].lower() not in (ApiKeyAuthentication.keyword, b"basic"):
        raise exceptions.NotAuthenticated()
    digest = _digest_of(header)
    now = time.monotonic()
    if (
        digest is not None
        and (hit := _verified.get(digest))
        and now - hit[0] < settings.API_KEY_CACHE_SECONDS
    ):
        return hit[1]
    authenticated = ApiKeyAuthentication().authenticate(cast(Request, request))
    assert authenticated is not None  # the header names a scheme it handles: a key or a refusal
    api_key = authenticated[1]
    if api_key.scope != Scope.ENFORCEMENT:
        raise exceptions.PermissionDenied(EnforcementScope.message)
    if digest is not None and settings.API_KEY_CACHE_SECONDS > 0:
        with _verified_lock:
            if len(_verified) >= 1024:
                for stale in [
                    d for d, (at, _) in _verified.items() if now - at >= settings.API_KEY_CACHE_SECONDS
                ]:
                    del _verified[stale]
            _verified[digest] = (now, api_key)
    return api_key


def remembered_enforcement_key(authorization: str) -> ApiKey | None:
    """The key of this Authorization header if enforcement_key() verified it within
    API_KEY_CACHE_SECONDS, from memory only; None means "ask enforcement_key()"."""
    digest = _digest_of(authorization.encode("iso-8859-1", "replace").split())
    hit = _verified.get(digest) if digest is not None else None
    if hit is None or time.monotonic() - hit[0] >= settings.API_KEY_CACHE_SECONDS:
        return None
    return hit[1]


def _digest_of(header: list[bytes]) -> str | None:
    if len(header) != 2:
        return None
    try:
        key = _password_of(header[1]) if header[0].lower() == b"basic" else header[1].decode("ascii")
    except (UnicodeDecodeError, ValueError, binascii.Error):
        return None
    return hash_api_key(key)


def api_key_of(request: Request) -> ApiKey:
    assert isinstance(request.auth, ApiKey)
    return request.auth


def actor_of(request: Request) -> Actor:
    api_key = api_key_of(request)
    return Actor(user=api_key.created_by, api_key=api_key)


class _ScopePermission(BasePermission):
    scope: str = ""
    message = "This API key's scope does not allow this operation."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.scope == self.scope


class CustomerScope(_ScopePermission):
    scope = Scope.CUSTOMER
    message = "This operation needs a customer API key."


class ProvisioningScope(_ScopePermission):
    scope = Scope.PROVISIONING
    message = "This operation needs a provisioning API key."


class ReviewerScope(_ScopePermission):
    """A reviewer key acts as the staff user it was issued to, so that roles, separation of
    duties and four-eyes apply to it as they do in the browser."""

    scope = Scope.REVIEWER
    message = "This operation needs a reviewer API key."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        user = api_key_of(request).created_by
        if user is None or not user.is_active or not is_staff_member(user):
            self.message = (
                "This reviewer key is not tied to an active reviewer, approver or admin; issue a "
                "new one with manage.py create_api_key --scope reviewer --user EMAIL."
            )
            return False
        return True


class EnforcementScope(_ScopePermission):
    scope = Scope.ENFORCEMENT
    message = "This operation needs an enforcement API key."
