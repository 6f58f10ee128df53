"""The code exchange, through mozilla-django-oidc, configured per issuer instead of globally.

The library builds the authorization request (state, nonce, PKCE) and exchanges the code; the
ID token check is ours (sso_tokens), and who the person is in the portal is decided by the
identity workflow, so `authenticate` hands back verified claims rather than a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from portal.accounts.sso import SsoProvider
from portal.accounts.sso_tokens import SsoError, metadata, verify_id_token


@dataclass(frozen=True)
class VerifiedSignIn:
    claims: dict[str, Any]
    id_token: str
    expires_at: int


def library_settings(provider: SsoProvider) -> dict[str, Any]:
    document = metadata(provider)
    return {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": document["authorization_endpoint"],
        "OIDC_OP_TOKEN_ENDPOINT": document["token_endpoint"],
        "OIDC_OP_USER_ENDPOINT": document.get("userinfo_endpoint") or "",
        "OIDC_OP_JWKS_ENDPOINT": document["jwks_uri"],
        "OIDC_RP_CLIENT_ID": provider.client_id,
        "OIDC_RP_CLIENT_SECRET": provider.client_secret,
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_RP_SCOPES": provider.scopes,
        "OIDC_AUTHENTICATION_CALLBACK_URL": f"sso_callback_{provider.key}",
        "OIDC_USE_NONCE": True,
        "OIDC_USE_PKCE": True,
        "OIDC_TIMEOUT": 10,
        "OIDC_REDIRECT_FIELD_NAME": "next",
        "OIDC_REDIRECT_ALLOWED_HOSTS": [],
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
    }


class SsoStartView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    provider: SsoProvider | None = None

    def get_settings(self, attr: str, *args: Any) -> Any:
        assert self.provider is not None
        return library_settings(self.provider).get(attr, *args)


class SsoBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def __init__(self, provider: SsoProvider) -> None:
        self.provider = provider
        self._settings = library_settings(provider)
        super().__init__()

    def get_settings(self, attr: str, *args: Any) -> Any:
        return self._settings.get(attr, *args)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        nonce = kwargs.get("nonce")
        if not token or not nonce:
            # Also userinfo sent as a JWT, which carries no nonce: this portal reads JSON userinfo.
            raise SsoError("The sign-in service sent no ID token the portal can check.")
        return verify_id_token(self.provider, token, nonce=nonce)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> VerifiedSignIn:
        claims = dict(payload)
        if self._settings["OIDC_OP_USER_ENDPOINT"]:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload["sub"]:
                raise SsoError("The sign-in service described someone else than it signed in.")
            # The ID token's own claims (amr, acr, exp, nonce) are the signed ones: they win.
            claims = {**userinfo, **payload}
        return VerifiedSignIn(claims=claims, id_token=id_token, expires_at=int(payload["exp"]))
