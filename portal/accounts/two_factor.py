"""Two-factor authentication with an authenticator app (TOTP, through django-otp).

A person has at most one confirmed TOTPDevice. While they set one up, an unconfirmed device holds
the secret their app is shown; it becomes confirmed when they enter a code from it. Accounts with a
confirmed device sign in in two steps: the password (counted by django-axes), then a code. With
REQUIRE_STAFF_2FA on, staff pages also need a session that has passed the code step.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import Actor, is_staff_member
from portal.audit.log import record

DEVICE_NAME = "Authenticator app"
PENDING_SIGN_IN_KEY = "two_factor_pending_sign_in"
# The code step must follow the password within this long, or the password is asked again.
PENDING_SIGN_IN_SECONDS = 300
# Set by a staff single sign-on whose issuer proved no second factor: the portal's code step stands in.
SSO_NEEDS_TOTP = "sso_needs_totp"


class TokenRefused(Exception):
    pass


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def unconfirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def two_factor_required(user: AbstractBaseUser | AnonymousUser) -> bool:
    return settings.REQUIRE_STAFF_2FA and (is_staff_member(user) or getattr(user, "is_staff", False))


def is_verified(request: HttpRequest) -> bool:
    # OTPMiddleware sets otp_device to the device this session was verified with, or None.
    return getattr(request.user, "otp_device", None) is not None


def check_token(device: TOTPDevice, token: str) -> TOTPDevice:
    """Verify `token` against `device` and return the device as updated, or raise TokenRefused.

    django-otp throttles each device: after n wrong codes in a row it refuses every code, right
    or wrong, for 2^(n-1) seconds (OTP_TOTP_THROTTLE_FACTOR), and a used code can't be replayed.
    """
    # Raise only after the transaction: a wrong code's throttle count must be committed.
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, details = device.verify_is_allowed()
        verified = allowed and device.verify_token(token)
    if not allowed:
        wait = math.ceil((details["locked_until"] - timezone.now()).total_seconds())
        raise TokenRefused(f"Too many wrong codes: wait {max(wait, 1)} seconds, then enter the newest code.")
    if not verified:
        raise TokenRefused("That code is not right. Enter the code your app shows now.")
    return device


def start_enrolment(user: User) -> TOTPDevice:
    """A new secret for the person's app; one they may have started with before is dropped."""
    with transaction.atomic(durable=True):
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def confirm_enrolment(device: TOTPDevice, *, actor: Actor) -> list[str]:
    """The person proved their app has the secret: from now on their sign-in asks for a code.

    Returns the recovery codes to show them, once."""
    with transaction.atomic(durable=True):
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record(actor=actor, action="two_factor.enabled", obj=device.user, after={"device": device.name})
        return _replace_recovery_codes(device.user, actor=actor)


def disable(user: User, *, actor: Actor) -> None:
    with transaction.atomic(durable=True):
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        record(actor=actor, action="two_factor.disabled", obj=user)


# Recovery codes: single-use codes for when the phone is lost, kept as django-otp static tokens.
# Only an HMAC of each is stored (StaticToken.token holds 16 characters), so a database copy
# doesn't sign anyone in; rotating SECRET_KEY invalidates them, like sessions.
RECOVERY_DEVICE_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are copied by hand from paper. 10 characters of 31 is about 49 bits.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10


def _recovery_digest(code: str) -> str:
    normalized = code.replace("-", "").replace(" ", "").lower().encode()
    mac = hmac.new(settings.SECRET_KEY.encode(), b"recovery-code:" + normalized, hashlib.sha256)
    return base64.b32encode(mac.digest()).decode()[:16]


def looks_like_recovery_code(token: str) -> bool:
    return len(token.replace("-", "").replace(" ", "")) == _RECOVERY_LENGTH


def _new_recovery_code() -> str:
    code = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return f"{code[:5]}-{code[5:]}"


def _replace_recovery_codes(user: User, *, actor: Actor) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=_recovery_digest(c)) for c in codes)
    record(actor=actor, action="two_factor.recovery_codes_issued", obj=user, after={"codes": len(codes)})
    return codes


def regenerate_recovery_codes(user: User, *, actor: Actor) -> list[str]:
    """New codes for a person with two-factor on; every earlier code stops working."""
    with transaction.atomic(durable=True):
        return _replace_recovery_codes(user, actor=actor)


def recovery_codes_left(user: User) -> int:
    count: int = StaticToken.objects.filter(device__user=user, device__name=RECOVERY_DEVICE_NAME).count()
    return count


def check_recovery_code(user: User, code: str) -> StaticDevice:
    """Use up one recovery code, or raise TokenRefused. Throttled like the app's codes."""
    device = StaticDevice.objects.filter(user=user, name=RECOVERY_DEVICE_NAME).first()
    if device is None:
        raise TokenRefused("You have no recovery codes. Enter the code your app shows now.")
    # As in check_token: the throttle count of a wrong code must be committed before raising.
    with transaction.atomic():
        device = StaticDevice.objects.select_for_update().get(pk=device.pk)
        allowed, details = device.verify_is_allowed()
        verified = allowed and device.verify_token(_recovery_digest(code))
        if verified:
            record(
                actor=Actor(user=user),
                action="two_factor.recovery_code_used",
                obj=user,
                after={"codes_left": device.token_set.count()},
            )
    if not allowed:
        wait = math.ceil((details["locked_until"] - timezone.now()).total_seconds())
        raise TokenRefused(f"Too many wrong codes: wait {max(wait, 1)} seconds, then try again.")
    if not verified:
        raise TokenRefused(
            "That recovery code is not right or was used before. Each code works once; "
            "enter another one, or the code your app shows now."
        )
    return device


def secret_of(device: TOTPDevice) -> str:
    """The base32 secret for typing into an app by hand, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_code_data_uri(device: TOTPDevice) -> str:
    # A data: URI, because the Content-Security-Policy allows images from data: but no inline SVG
    # styling; the white fill keeps the code scannable in dark mode.
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathFillImage, border=2)
    svg: str = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


# The sign-in step. The password was right but the person isn't signed in yet: the session only
# remembers who they are, through which backend, where they were going, and since when.


@dataclass(frozen=True)
class PendingSignIn:
    user: User
    backend: str
    next_url: str


def begin_sign_in(request: HttpRequest, user: User, next_url: str) -> None:
    request.session.cycle_key()
    request.session[PENDING_SIGN_IN_KEY] = {
        "user": user.pk,
        "backend": user.backend,  # set by authenticate()
        "next": next_url,
        "started": time.time(),
    }


def pending_sign_in(request: HttpRequest) -> PendingSignIn | None:
    """The sign-in waiting for its code, or None (none started, timed out or the account is gone)."""
    pending = request.session.get(PENDING_SIGN_IN_KEY)
    if not isinstance(pending, dict):
        return None
    if time.time() - pending["started"] > PENDING_SIGN_IN_SECONDS:
        cancel_sign_in(request)
        messages.info(request, "The sign-in timed out. Enter your email and password again.")
        return None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        cancel_sign_in(request)
        return None
    return PendingSignIn(user=user, backend=pending["backend"], next_url=pending["next"])


def cancel_sign_in(request: HttpRequest) -> None:
    request.session.pop(PENDING_SIGN_IN_KEY, None)


def finish_sign_in(request: HttpRequest, pending: PendingSignIn, device: Device) -> None:
    cancel_sign_in(request)
    auth.login(request, pending.user, backend=pending.backend)
    django_otp.login(request, device)


def mark_verified(request: HttpRequest, device: Device) -> None:
    """A signed-in session passed the code step (after enrolment, or when staff pages ask for it)."""
    request.session.cycle_key()
    django_otp.login(request, device)


def staff_gate_passed(request: HttpRequest) -> bool:
    required = two_factor_required(request.user) or bool(request.session.get(SSO_NEEDS_TOTP))
    return not required or is_verified(request)


def staff_gate(request: HttpRequest, next_url: str) -> str | None:
    """Where a staff member must go first when two-factor authentication is mandatory for them
    and this session hasn't passed it, with a message saying why; None if they may go on."""
    if staff_gate_passed(request):
        return None
    assert isinstance(request.user, User)
    if confirmed_device(request.user) is not None:
        messages.info(request, "Enter the code from your authenticator app to open staff pages.")
        url = reverse("two_factor_verify")
    else:
        messages.warning(
            request, "Staff accounts need two-factor authentication: set it up to open staff pages."
        )
        url = reverse("two_factor")
    return f"{url}?{urlencode({'next': next_url})}"
