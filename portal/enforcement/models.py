from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta

from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.functions import UUID4
from django.utils import timezone

from portal.accounts.models import Tenant
from portal.core.blocks import BlockQuerySet, IPBlock


class ExemptionState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


# A suspended exemption still belongs to its tenant: a new request must not duplicate it.
IN_FORCE = (ExemptionState.ACTIVE, ExemptionState.SUSPENDED)


class ExemptionQuerySet(BlockQuerySet["Exemption"]):
    def in_force(self) -> ExemptionQuerySet:
        return self.filter(state__in=IN_FORCE)

    def active(self) -> ExemptionQuerySet:
        return self.filter(state=ExemptionState.ACTIVE)

    def due_to_expire(self) -> ExemptionQuerySet:
        return self.in_force().filter(expires_at__lte=timezone.now())


class Exemption(IPBlock):
    """The right to send on TCP port 25 from one address or block."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.PROTECT, related_name="exemptions")
    request = models.ForeignKey(
        "unblock.UnblockRequest", models.PROTECT, null=True, blank=True, related_name="exemptions"
    )
    state = models.CharField(max_length=16, choices=ExemptionState.choices, default=ExemptionState.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    state_reason = models.TextField(blank=True)
    reinstatement_asked_at = models.DateTimeField(null=True, blank=True)
    reinstatement_note = models.TextField(blank=True)

    objects = ExemptionQuerySet.as_manager()

    class Meta:
        ordering = ["family", "first"]
        indexes = [
            models.Index(fields=["family", "first", "last"]),
            models.Index(fields=["state", "expires_at"]),
        ]

    @property
    def is_in_force(self) -> bool:
        return self.state in IN_FORCE


class ChangeOp(models.TextChoices):
    ADD = "add", "Add"
    REMOVE = "remove", "Remove"


class FeedChange(models.Model):
    """One change of the active set. `seq` is assigned under a lock held until commit, so
    sequence order is commit order and "everything after N" never skips a change."""

    seq = models.BigIntegerField(unique=True)
    exemption = models.ForeignKey(Exemption, models.PROTECT, related_name="changes")
    op = models.CharField(max_length=8, choices=ChangeOp.choices)
    event = models.CharField(max_length=32)
    cidr = models.CharField(max_length=43)
    family = models.PositiveSmallIntegerField()
    tenant_external_id = models.CharField(max_length=100)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        # Every feed request reads max(seq) and max(at), 304s included: both must be index look-ups.
        indexes = [models.Index(fields=["at"], name="feedchange_at")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.op} {self.cidr}"


class FeedArtifact(models.Model):
    """One snapshot format of one feed version, built once by a worker and stored under the
    hash of its content (portal/enforcement/artifacts.py); web processes only look it up."""

    format = models.CharField(max_length=16)
    version = models.CharField(max_length=48)
    seq = models.BigIntegerField()
    name = models.CharField(max_length=200)
    size = models.BigIntegerField()
    gzip_name = models.CharField(max_length=200)
    gzip_size = models.BigIntegerField()
    built_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Every full-body feed request looks its artifact up by format and version.
        constraints = [models.UniqueConstraint(fields=["format", "version"], name="feedartifact_version")]

    def __str__(self) -> str:
        return f"{self.format} {self.version}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


EVENT_TYPES = (
    "exemption.activated",
    "exemption.suspended",
    "exemption.reinstated",
    "exemption.revoked",
    "exemption.expired",
    "exemption.renewed",
)


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def enabled(self) -> WebhookEndpointQuerySet:
        return self.filter(enabled=True)


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, default=new_secret)
    # During a rotation both secrets sign each message, until this one expires.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        # An endpoint with no event types listed receives every event.
        return not self.event_types or event in self.event_types

    def signing_secrets(self) -> list[str]:
        secrets_ = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > timezone.now()
        ):
            secrets_.append(self.previous_secret)
        return secrets_

    def rotate_secret(self, overlap: timedelta) -> None:
        self.previous_secret = self.secret
        self.previous_secret_expires_at = timezone.now() + overlap
        self.secret = new_secret()


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def due(self) -> DeliveryQuerySet:
        now = timezone.now()
        return self.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )

    def claim_due(self, limit: int, lease: timedelta) -> list[Delivery]:
        """Claim up to `limit` due messages of enabled endpoints, oldest first, for `lease`.

        On PostgreSQL one statement: the rows another worker is claiming are skipped, not
        waited for, and no row is claimed twice. Elsewhere one conditional UPDATE per row.
        """
        due = self.due().filter(endpoint__enabled=True).order_by("next_attempt_at", "id")
        if connection.vendor != "postgresql":
            claimed = [d.pk for d in due.only("pk")[:limit] if d.claim(lease)]
        else:
            now = timezone.now()
            locking = due.select_for_update(skip_locked=True, of=("self",)).values("pk")[:limit]
            with transaction.atomic():  # FOR UPDATE compiles only inside one
                candidates, params = locking.query.sql_with_params()
            table = connection.ops.quote_name(Delivery._meta.db_table)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET claimed_until = %s, attempts = attempts + 1 "  # noqa: S608
                    f"WHERE id IN ({candidates}) RETURNING id",
                    [now + lease, *params],
                )
                claimed = [pk for (pk,) in cursor.fetchall()]
        return list(
            Delivery.objects.filter(pk__in=claimed)
            .select_related("endpoint")
            .order_by("next_attempt_at", "id")
        )


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class Delivery(models.Model):
    """One message to one endpoint; the message id is the same on every attempt."""

    id = models.BigAutoField(primary_key=True)
    # What URLs and the API show: the integer key stays internal. db_default fills the rows that
    # existed before the column did, one value each, in the migration that adds it.
    uuid = models.UUIDField(default=uuid.uuid4, db_default=UUID4(), unique=True, editable=False)
    message_id = models.CharField(max_length=40, default=new_message_id, db_index=True)
    endpoint = models.ForeignKey(WebhookEndpoint, models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_pending", condition=Q(state="pending")),
            models.Index(fields=["endpoint", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.state})"

    def claim(self, lease: timedelta) -> bool:
        now = timezone.now()
        # Due again at the moment of claiming: another worker may have tried it and scheduled
        # the retry since this one read it.
        return (
            Delivery.objects.filter(pk=self.pk, state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=now + lease, attempts=models.F("attempts") + 1)
            == 1
        )


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at}: {self.status_code or self.error}"


class PeriodicJob(models.Model):
    """Due times of the periodic jobs; claiming one is a conditional UPDATE, so one worker wins."""

    name = models.CharField(max_length=50, primary_key=True)
    next_run_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.name


class WorkerHeartbeat(models.Model):
    name = models.CharField(max_length=100, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at}"
