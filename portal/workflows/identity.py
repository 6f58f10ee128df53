"""Who a person signing in through single sign-on is: their account, tenants and staff roles.

The identity provider is the source of truth for *who belongs where*; provisioning stays the
source of truth for tenants and allocations. Each sign-in makes the portal's memberships (for
customers) or roles (for staff) equal to what the claims say, in one transaction with its audit
rows, or refuses before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import STAFF_ROLES, Actor, ApiKey, Membership, SsoIdentity, Tenant, roles_of
from portal.accounts.sso import SsoProvider
from portal.audit.log import record


class IdentityRefused(Exception):
    """A sign-in the provider accepted but the portal can't: the title and advice are shown."""

    def __init__(self, title: str, advice: str) -> None:
        super().__init__(title)
        self.title = title
        self.advice = advice


def sign_in_customer(*, provider: SsoProvider, claims: Mapping[str, Any]) -> User:
    wanted_ids = provider.tenant_ids(claims)
    if not wanted_ids:
        raise IdentityRefused(
            "Your account names no customer account",
            f"Your sign-in carries no customer account ({provider.tenant_claim}). Ask your "
            "account's owner to add you in the provider's console, then sign in again.",
        )
    tenants = {t.external_id: t for t in Tenant.objects.filter(external_id__in=wanted_ids)}
    unknown = sorted(set(wanted_ids) - tenants.keys())
    if unknown:
        raise IdentityRefused(
            "This customer account is not known here yet",
            f"The portal has no customer account {', '.join(unknown)}. New accounts reach the "
            "portal within minutes of being opened; if this persists, contact support.",
        )
    with transaction.atomic(durable=True):
        user, actor = _account_for(provider, claims)
        current = {m.tenant.external_id: m for m in user.memberships.select_related("tenant")}
        for external_id in sorted(tenants.keys() - current.keys()):
            tenant = tenants[external_id]
            Membership.objects.create(user=user, tenant=tenant)
            record(
                actor=actor, action="membership.added", obj=user, tenant_id=tenant.pk, after=_source(provider)
            )
        for external_id in sorted(current.keys() - tenants.keys()):
            membership = current[external_id]
            membership.delete()
            # Keys act for the tenant on the person's behalf: they leave with the person.
            ApiKey.objects.usable().filter(tenant=membership.tenant, created_by=user).update(
                revoked_at=timezone.now()
            )
            record(
                actor=actor,
                action="membership.removed",
                obj=user,
                tenant_id=membership.tenant_id,
                before=_source(provider),
            )
    return user


def sign_in_staff(*, provider: SsoProvider, claims: Mapping[str, Any]) -> User:
    wanted = provider.roles(claims)
    if not wanted:
        raise IdentityRefused(
            "No staff role for your account",
            f"None of your groups ({provider.groups_claim}) gives a role in this portal. Ask the "
            "portal's administrators which group makes you a reviewer, approver or admin.",
        )
    with transaction.atomic(durable=True):
        user, actor = _account_for(provider, claims)
        current = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
        for role in sorted(wanted - current):
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            record(
                actor=actor, action="staff_role.added", obj=user, after={"role": role, **_source(provider)}
            )
        for role in sorted(current - wanted):
            user.groups.remove(Group.objects.get(name=role))
            record(
                actor=actor, action="staff_role.removed", obj=user, before={"role": role, **_source(provider)}
            )
        # Django's admin follows the admin role; superusers made by hand are left alone.
        if ("admin" in wanted) != user.is_staff and not user.is_superuser:
            user.is_staff = "admin" in wanted
            user.save(update_fields=["is_staff"])
    return user


def _source(provider: SsoProvider) -> dict[str, str]:
    return {"source": f"single sign-on ({provider.key})"}


def _may_link(provider: SsoProvider, claims: Mapping[str, Any], user: User) -> bool:
    """Whether a first sign-in may take over the existing account with the claimed email.

    Customers' issuers are the provider's console, where a customer may name any email: their
    sign-in links only to a customer account and only for an email the issuer has verified. The
    staff issuer is the company's own, trusted unless it says the email is unverified.
    """
    if not user.is_active:
        return False
    if provider.for_staff:
        return claims.get("email_verified") is not False
    privileged = user.is_staff or user.is_superuser or bool(roles_of(user))
    return claims.get("email_verified") is True and not privileged


def _account_for(provider: SsoProvider, claims: Mapping[str, Any]) -> tuple[User, Actor]:
    """The account the issuer's subject is linked to; else the account with the claimed email,
    linked now (unless the issuer says the email is unverified); else a new account."""
    subject = str(claims["sub"])
    email = str(claims.get(provider.email_claim) or "").strip().lower()
    identity = (
        SsoIdentity.objects.select_related("user")
        .filter(issuer=provider.issuer, subject=subject, user__is_active=True)
        .first()
    )
    if identity is not None:
        identity.last_sign_in_at = timezone.now()
        identity.save(update_fields=["last_sign_in_at"])
        return identity.user, Actor(user=identity.user)
    if "@" not in email:
        raise IdentityRefused(
            "Your account has no email address",
            f"The portal needs your email address ({provider.email_claim}) to reach you about "
            "your requests. Ask your identity provider's administrators to release it.",
        )
    if SsoIdentity.objects.filter(issuer=provider.issuer, subject=subject).exists():
        # Linked to an account that was deactivated: an administrator decides, not the issuer.
        raise IdentityRefused(
            "This account is switched off",
            "Ask an administrator of the portal to switch your account back on.",
        )
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and not _may_link(provider, claims, user):
        raise IdentityRefused(
            "This email address belongs to another account",
            "Ask an administrator of the portal to link your accounts.",
        )
    if user is None:
        if User.objects.filter(username__iexact=email).exists():
            raise IdentityRefused(
                "This email address belongs to another account",
                "Ask an administrator of the portal to link your accounts.",
            )
        user = User(username=email, email=email)
        user.set_unusable_password()
        user.save()
    identity = SsoIdentity.objects.create(user=user, issuer=provider.issuer, subject=subject)
    actor = Actor(user=user)
    record(actor=actor, action="sso_identity.linked", obj=user, after={"issuer": provider.issuer})
    return user, actor
