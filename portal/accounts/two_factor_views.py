"""Signing in with a code, and setting up or turning off the authenticator app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts import two_factor
from portal.accounts.forms import SignInForm, TokenForm
from portal.accounts.models import Actor, Tenant, is_staff_member
from portal.accounts.sso import configured
from portal.accounts.views import user_of


class SignInView(auth_views.LoginView):
    """The password step. Accounts with an authenticator app go on to the code step, signed in
    only once that passes; django-axes counts wrong passwords here as before."""

    redirect_authenticated_user = True
    form_class = SignInForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["sso_providers"] = configured()
        context["local_login"] = settings.LOCAL_LOGIN
        return context

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if two_factor.confirmed_device(user) is None:
            return super().form_valid(form)
        two_factor.begin_sign_in(self.request, user, self.get_success_url())
        return redirect("two_factor_verify")


def _next_url(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


@sensitive_post_parameters("token")
@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The code step: after the password at sign-in, or for a signed-in session that staff pages
    send here when two-factor authentication is mandatory."""
    pending = None
    if request.user.is_authenticated:
        user = user_of(request)
        next_url = _next_url(request, resolve_url("home"))
        if two_factor.is_verified(request):
            return redirect(next_url)
    else:
        pending = two_factor.pending_sign_in(request)
        if pending is None:
            return redirect("login")
        user, next_url = pending.user, pending.next_url

    device = two_factor.confirmed_device(user)
    if device is None:
        # Turned off since the password step, or never set up: nothing to check a code against.
        two_factor.cancel_sign_in(request)
        return redirect("login") if pending is not None else _back_to_manage(request)

    form = TokenForm(request.POST or None, device=device, accept_recovery=True)
    if request.method == "POST" and form.is_valid():
        if pending is not None:
            two_factor.finish_sign_in(request, pending, form.device)
        else:
            two_factor.mark_verified(request, form.device)
        if form.used_recovery_code:
            left = two_factor.recovery_codes_left(user)
            messages.warning(
                request,
                f"You signed in with a recovery code; {left} left. If your phone is lost, set up "
                "two-factor again on a new one; if you are running low, make new codes.",
            )
        return redirect(next_url)
    context = {"form": form, "next": next_url if pending is None else "", "who": user.email}
    return render(request, "registration/two_factor_verify.html", context)


def _base_template(user: User) -> str:
    if is_staff_member(user):
        return "staff_base.html"
    if Tenant.objects.for_user(user).exists():
        return "customer_base.html"
    return "base.html"


def _manage_page(request: HttpRequest, *, form: TokenForm | None = None) -> HttpResponse:
    user = user_of(request)
    device = two_factor.confirmed_device(user)
    setup = None if device is not None else two_factor.unconfirmed_device(user)
    if form is None and (device or setup):
        form = TokenForm(device=device or setup)
    context = {
        "base_template": _base_template(user),
        "device": device,
        "setup": setup,
        "form": form,
        "required": two_factor.two_factor_required(user),
        "next": _next_url(request, ""),
        "recovery_codes_left": two_factor.recovery_codes_left(user) if device else 0,
    }
    if setup is not None:
        context["secret"] = two_factor.secret_of(setup)
        context["config_url"] = setup.config_url
        context["qr_code"] = two_factor.qr_code_data_uri(setup)
    response = render(request, "accounts/two_factor.html", context)
    # The page can show the secret: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


def _back_to_manage(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request, "")
    url = reverse("two_factor")
    return redirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


@login_required
def manage(request: HttpRequest) -> HttpResponse:
    return _manage_page(request)


@require_POST
@login_required
def setup(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if two_factor.confirmed_device(user) is not None:
        messages.info(request, "Two-factor authentication is already on.")
    else:
        two_factor.start_enrolment(user)
    return _back_to_manage(request)


@sensitive_post_parameters("token")
@require_POST
@login_required
def confirm(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    device: TOTPDevice | None = two_factor.unconfirmed_device(user)
    if device is None:
        messages.info(request, "Start the set-up again: there is no new secret waiting for a code.")
        return _back_to_manage(request)
    form = TokenForm(request.POST, device=device)
    if not form.is_valid():
        return _manage_page(request, form=form)
    codes = two_factor.confirm_enrolment(device, actor=Actor(user=user))
    two_factor.mark_verified(request, form.device)
    messages.success(request, "Two-factor authentication is on. Signing in now asks for a code.")
    return _recovery_codes_page(request, codes, next_url=_next_url(request, reverse("two_factor")))


def _recovery_codes_page(request: HttpRequest, codes: list[str], *, next_url: str) -> HttpResponse:
    """The codes, shown in this one response only: they are stored as hashes."""
    context = {"base_template": _base_template(user_of(request)), "codes": codes, "next_url": next_url}
    response = render(request, "accounts/recovery_codes.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if two_factor.confirmed_device(user) is None:
        messages.info(request, "Recovery codes come with two-factor authentication: set it up first.")
        return redirect("two_factor")
    if not two_factor.is_verified(request):
        # Codes are a second factor: only a session that passed the code step may make new ones.
        messages.error(
            request,
            "Sign out and sign in again with a code from your authenticator app to make new recovery codes.",
        )
        return redirect("two_factor")
    codes = two_factor.regenerate_recovery_codes(user, actor=Actor(user=user))
    return _recovery_codes_page(request, codes, next_url=reverse("two_factor"))


@sensitive_post_parameters("token")
@require_POST
@login_required
def disable(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    device: TOTPDevice | None = two_factor.confirmed_device(user)
    if device is None:
        return _back_to_manage(request)
    form = TokenForm(request.POST, device=device)
    if not form.is_valid():
        return _manage_page(request, form=form)
    two_factor.disable(user, actor=Actor(user=user))
    messages.success(request, "Two-factor authentication is off. Signing in asks only for your password.")
    return redirect("two_factor")
