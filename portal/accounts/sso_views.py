"""Signing in and out through the customers' or the staff's OpenID Connect issuer."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.accounts import two_factor
from portal.accounts.sso import SsoProvider, provider
from portal.accounts.sso_backend import SsoBackend, SsoStartView
from portal.accounts.sso_tokens import SsoError, metadata
from portal.workflows.identity import IdentityRefused, sign_in_customer, sign_in_staff

SESSION_PROVIDER = "sso_provider"
SESSION_ID_TOKEN = "sso_id_token"  # noqa: S105 (a session key) — kept for the logout hint only; never logged or shown
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"  # noqa: S105 (a dotted path)


def _provider_or_404(key: str) -> SsoProvider:
    found = provider(key)
    if found is None:
        raise Http404("No such sign-in")
    return found


def _refused(request: HttpRequest, sso: SsoProvider, title: str, advice: str, status: int) -> HttpResponse:
    context = {"provider": sso, "title": title, "advice": advice}
    return render(request, "registration/sso_error.html", context, status=status)


@never_cache
def start(request: HttpRequest, key: str) -> HttpResponse:
    sso = _provider_or_404(key)
    try:
        response: HttpResponse = SsoStartView.as_view(provider=sso)(request)
    except SsoError as error:
        return _refused(request, sso, "Signing in is not possible right now", str(error), 502)
    # Bind the state to this configuration, so that an answer can't be replayed at the other one.
    state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    request.session["oidc_states"][state]["provider"] = sso.key
    request.session.modified = True
    return response


@never_cache
def callback(request: HttpRequest, key: str) -> HttpResponse:
    sso = _provider_or_404(key)
    states = request.session.get("oidc_states") or {}
    entry = states.pop(request.GET.get("state", ""), None)  # used once, whatever happens next
    request.session.modified = True
    if entry is None or entry.get("provider") != sso.key:
        return _refused(
            request,
            sso,
            "This sign-in was not started here",
            "The link was already used, has expired, or was started in another browser.",
            400,
        )
    if "error" in request.GET:
        said = request.GET.get("error_description") or request.GET["error"]
        return _refused(request, sso, f"{sso.name} did not sign you in", f"It said: {said[:300]}", 400)
    if not request.GET.get("code"):
        return _refused(request, sso, f"{sso.name} did not sign you in", "Its answer had no code.", 400)
    try:
        verified = SsoBackend(sso).authenticate(
            request, nonce=entry["nonce"], code_verifier=entry.get("code_verifier")
        )
        if verified is None:
            raise SsoError("The sign-in service's answer did not pass the portal's checks.")
        if sso.for_staff:
            user = sign_in_staff(provider=sso, claims=verified.claims)
        else:
            user = sign_in_customer(provider=sso, claims=verified.claims)
    except SsoError as error:
        return _refused(request, sso, f"Signing in with {sso.name} failed", str(error), 400)
    except requests.RequestException:
        advice = "The sign-in service did not accept the portal's request. Try again in a minute."
        return _refused(request, sso, f"Signing in with {sso.name} failed", advice, 502)
    except IdentityRefused as refused:
        return _refused(request, sso, refused.title, refused.advice, 403)
    return _finish(request, sso, user, verified.claims, verified.id_token, verified.expires_at)


def _finish(
    request: HttpRequest, sso: SsoProvider, user: User, claims: dict[str, object], id_token: str, exp: int
) -> HttpResponse:
    next_url = request.session.pop("oidc_login_next", None) or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = resolve_url(settings.LOGIN_REDIRECT_URL)
    proved = sso.proves_mfa(claims)
    needs_second_factor = sso.require_mfa and not proved
    # Someone who turned on the portal's own second factor is asked for it whenever the issuer
    # didn't prove one, whether or not the configuration requires it.
    device = None if proved else two_factor.confirmed_device(user)
    if needs_second_factor and device is None and not sso.for_staff:
        advice = f"Turn on multi-factor authentication at {sso.name}, then sign in again."
        return _refused(request, sso, "A second factor is needed", advice, 403)
    user.backend = PASSWORD_BACKEND
    if device is not None:
        two_factor.begin_sign_in(request, user, next_url)  # the portal's own code step
    else:
        auth.login(request, user, backend=PASSWORD_BACKEND)
    request.session[SESSION_PROVIDER] = sso.key
    request.session[SESSION_ID_TOKEN] = id_token
    if needs_second_factor:
        # Staff without a second factor at the issuer must set up the portal's before staff pages.
        request.session[two_factor.SSO_NEEDS_TOTP] = True
    if sso.for_staff:
        # The issuer vouches for staff only until the ID token expires.
        request.session.set_expiry(datetime.fromtimestamp(exp, UTC))
    return redirect("two_factor_verify") if device is not None else redirect(next_url)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out here, then at the issuer too when it supports RP-initiated logout."""
    sso = provider(request.session.get(SESSION_PROVIDER, ""))
    id_token = request.session.get(SESSION_ID_TOKEN, "")
    auth.logout(request)
    after = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    if sso is None or not id_token:
        return redirect(after)
    try:
        end_session = metadata(sso).get("end_session_endpoint")
    except SsoError:
        end_session = None
    if not isinstance(end_session, str):
        return redirect(after)
    query = {"id_token_hint": id_token, "client_id": sso.client_id, "post_logout_redirect_uri": after}
    return redirect(f"{end_session}?{urlencode(query)}")
