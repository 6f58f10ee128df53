from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.core.blocks import BlockQuerySet, IPBlock


class BillingStanding(models.TextChoices):
    GOOD = "good", "Good"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> TenantQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user_id=user.pk)


class Tenant(models.Model):
    """A provider's customer account, keyed by the provider's own id for it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    account_opened_on = models.DateField()
    identity_verified = models.BooleanField(default=False)
    billing_standing = models.CharField(
        max_length=16, choices=BillingStanding.choices, default=BillingStanding.GOOD
    )
    paid_invoices = models.PositiveIntegerField(default=0)
    abuse_contact = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class AllocationQuerySet(BlockQuerySet["Allocation"]):
    def active(self) -> AllocationQuerySet:
        return self.filter(released_at__isnull=True)

    def held_at(self, when: datetime) -> AllocationQuerySet:
        """Allocations that were assigned at `when`, whoever holds the block now."""
        return self.filter(Q(released_at__isnull=True) | Q(released_at__gt=when), assigned_at__lte=when)


class Allocation(IPBlock):
    """An IP block a tenant holds or held; released rows stay so that history can be answered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="allocations")
    assigned_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = AllocationQuerySet.as_manager()

    class Meta:
        ordering = ["family", "first", "assigned_at"]
        indexes = [models.Index(fields=["family", "first", "last"])]

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant}"


class Scope(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    REVIEWER = "reviewer", "Reviewer"
    ENFORCEMENT = "enforcement", "Enforcement (read-only feeds)"
    PROVISIONING = "provisioning", "Provisioning"


KEY_PREFIX = "eep_"
LOOKUP_LENGTH = 12


def hash_api_key(key: str) -> str:
    return hmac.new(settings.API_KEY_HASH_SECRET.encode(), key.encode(), hashlib.sha256).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)

    def for_tenant(self, tenant: Tenant) -> ApiKeyQuerySet:
        return self.filter(tenant=tenant, scope=Scope.CUSTOMER)


class ApiKey(models.Model):
    """A bearer key. The key itself is shown once; only its keyed hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    tenant = models.ForeignKey(Tenant, models.CASCADE, null=True, blank=True, related_name="api_keys")
    lookup = models.CharField(max_length=LOOKUP_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope="customer", tenant__isnull=False) | ~Q(scope="customer"),
                name="customer_key_has_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.display_prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"{KEY_PREFIX}{self.lookup}"

    @classmethod
    def issue(
        cls, *, name: str, scope: str, tenant: Tenant | None, created_by: User | None
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its secret, which is never retrievable again."""
        secret = secrets.token_urlsafe(32)
        lookup = secrets.token_hex(LOOKUP_LENGTH // 2)
        key = f"{KEY_PREFIX}{lookup}{secret}"
        api_key = cls.objects.create(
            name=name,
            scope=scope,
            tenant=tenant,
            lookup=lookup,
            digest=hash_api_key(key),
            created_by=created_by,
        )
        return api_key, key

    @classmethod
    def authenticate(cls, key: str) -> ApiKey | None:
        if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + LOOKUP_LENGTH + 20:
            return None
        lookup = key[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]
        api_key = cls.objects.usable().select_related("tenant").filter(lookup=lookup).first()
        if api_key is None or not hmac.compare_digest(api_key.digest, hash_api_key(key)):
            return None
        return api_key

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])

    def touch(self) -> None:
        # Write at most once a minute: last-used is for people, not an access log.
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


STAFF_ROLES = ("reviewer", "approver", "admin")


def roles_of(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached: set[str] | None = getattr(user, "_portal_roles", None)
    if cached is None:
        assert isinstance(user, User)
        cached = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached.add("admin")
        user._portal_roles = cached  # type: ignore[attr-defined]
    return cached


def is_staff_member(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(roles_of(user))


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a person, an API key, or the portal itself."""

    user: User | None
    api_key: ApiKey | None = None
    system: str = ""

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"API key {self.api_key.name} ({self.api_key.display_prefix}…)"
        if self.user is not None:
            return self.user.email or self.user.get_username()
        return self.system or "system"

    @classmethod
    def of_system(cls, name: str) -> Actor:
        return cls(user=None, system=name)


class SsoIdentity(models.Model):
    """A person as an OpenID Connect issuer knows them: `sub` is stable where emails are not."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="unique_sso_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
