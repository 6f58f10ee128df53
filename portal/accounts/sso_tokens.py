"""What an OpenID Connect issuer publishes (discovery, signing keys) and the ID token check.

Discovery documents and key sets are cached per process; a token signed with a key id the cache
doesn't know makes one refetch (the issuer rotated its keys), at most every few seconds so that
made-up key ids can't turn sign-in attempts into a flood of requests to the issuer.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from django.conf import settings

from portal.accounts.sso import SsoProvider

# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are refused.
SIGNING_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]


class SsoError(Exception):
    """Why a sign-in with the identity provider failed, in words for the person signing in."""


_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_key_sets: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}


def clear_caches() -> None:
    with _lock:
        _metadata.clear()
        _key_sets.clear()


def _check_url(url: str) -> str:
    # Plain HTTP only to this machine (a provider under test, or `make demo`); keys and tokens
    # fetched over the network must come over TLS.
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return url
    raise SsoError("The sign-in service is misconfigured (its addresses must use HTTPS).")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(_check_url(url), timeout=settings.SSO_HTTP_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError):
        raise SsoError("The sign-in service could not be reached. Try again in a minute.") from None
    if not isinstance(document, dict):
        raise SsoError("The sign-in service sent an answer the portal can't read.")
    return document


def metadata(provider: SsoProvider) -> dict[str, Any]:
    """The issuer's discovery document, which must name exactly the configured issuer."""
    now = time.monotonic()
    with _lock:
        cached = _metadata.get(provider.issuer)
    if cached and now - cached[0] < settings.SSO_JWKS_CACHE_SECONDS:
        return cached[1]
    document = _get_json(f"{provider.issuer}/.well-known/openid-configuration")
    if document.get("issuer") != provider.issuer:
        raise SsoError("The sign-in service names a different issuer than configured.")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str):
            raise SsoError(f"The sign-in service publishes no {name}.")
        _check_url(document[name])
    with _lock:
        _metadata[provider.issuer] = (now, document)
    return document


def signing_key(provider: SsoProvider, kid: str | None) -> jwt.PyJWK:
    now = time.monotonic()
    with _lock:
        fetched_at, keys = _key_sets.get(provider.issuer, (0.0, {}))
    stale = now - fetched_at >= settings.SSO_JWKS_CACHE_SECONDS
    unknown = kid not in keys and now - fetched_at >= settings.SSO_JWKS_MIN_REFETCH_SECONDS
    if stale or unknown:
        keys = {}
        for jwk in _get_json(metadata(provider)["jwks_uri"]).get("keys", []):
            if isinstance(jwk, dict) and jwk.get("use", "sig") == "sig":
                try:
                    keys[jwk.get("kid", "")] = jwt.PyJWK(jwk)
                except jwt.PyJWTError:
                    continue  # a key type this portal can't use; the issuer signs with another
        with _lock:
            _key_sets[provider.issuer] = (now, keys)
    key = keys.get(kid or "") or (next(iter(keys.values())) if kid is None and len(keys) == 1 else None)
    if key is None:
        raise SsoError("The sign-in service signed with a key it doesn't publish.")
    return key


def verify_id_token(provider: SsoProvider, token: str, *, nonce: str) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, lifetime and nonce are right."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SsoError("The sign-in service sent an ID token the portal can't read.") from None
    algorithm = header.get("alg")
    if algorithm not in SIGNING_ALGORITHMS:
        raise SsoError("The sign-in service signed its ID token in a way the portal doesn't accept.")
    key = signing_key(provider, header.get("kid"))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=provider.client_id,
            issuer=provider.issuer,
            leeway=settings.SSO_CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise SsoError("The sign-in expired before it reached the portal (or a clock is wrong).") from None
    except jwt.PyJWTError:
        raise SsoError("The sign-in service's ID token did not pass the portal's checks.") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise SsoError("The sign-in service's ID token was issued to another application.")
    if claims.get("nonce") != nonce:
        raise SsoError("The sign-in answer does not belong to this sign-in. Start again.")
    return claims
