from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import connection, models
from django.db.models import Q
from django.db.models.functions import Cast, Coalesce, Upper
from django.utils import timezone

from portal.accounts.models import Tenant
from portal.core.blocks import BlockQuerySet, IPBlock
from portal.lib.ipblocks import BlockError, parse_block


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    NEEDS_INFO = "needs_info", "Needs information"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_STATES = (State.SUBMITTED, State.IN_REVIEW, State.NEEDS_INFO)

# The whole state machine: action -> (states it may start from, state it leads to).
TRANSITIONS: dict[str, tuple[tuple[State, ...], State]] = {
    "submit": ((State.DRAFT,), State.SUBMITTED),
    "start_review": ((State.SUBMITTED,), State.IN_REVIEW),
    "ask_for_info": ((State.SUBMITTED, State.IN_REVIEW), State.NEEDS_INFO),
    "answer": ((State.NEEDS_INFO,), State.IN_REVIEW),
    "approve": ((State.SUBMITTED, State.IN_REVIEW), State.APPROVED),
    "deny": ((State.SUBMITTED, State.IN_REVIEW, State.NEEDS_INFO), State.DENIED),
    "withdraw": ((State.DRAFT, *OPEN_STATES), State.WITHDRAWN),
}


class IllegalTransition(Exception):
    """The request is not in a state from which this action is allowed."""

    def __init__(self, action: str, current: str) -> None:
        self.action = action
        self.current = current
        label = STATE_PHRASES.get(current, State(current).label.lower())
        super().__init__(f"A request that is {label} can't be {ACTION_PAST[action]}.")


# How "A request that is …" reads for states whose label doesn't fit the sentence.
STATE_PHRASES = {"draft": "a draft", "needs_info": "waiting for information"}


ACTION_PAST = {
    "submit": "submitted",
    "start_review": "taken into review",
    "ask_for_info": "sent a question",
    "answer": "answered",
    "approve": "approved",
    "deny": "denied",
    "withdraw": "withdrawn",
    "assign": "assigned (only open requests can be)",
    "edit": "edited (only drafts can be)",
}


class UseCase(models.TextChoices):
    OWN_MAIL_SERVER = "own_mail_server", "Own mail server (MTA for my domains)"
    TRANSACTIONAL = "transactional", "Transactional relay (receipts, alerts, password resets)"
    FORWARDING = "forwarding", "Mail forwarding"
    OTHER = "other", "Other (explain below)"
    # Kept as a choice so that the form can explain why it is refused instead of hiding it.
    BULK_MARKETING = "bulk_marketing", "Bulk or marketing mail"


class UnblockRequestQuerySet(models.QuerySet["UnblockRequest"]):
    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> UnblockRequestQuerySet:
        """The requests of every tenant the user is a member of; nothing for anyone else."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(tenant__memberships__user_id=user.pk)

    def for_tenant(self, tenant: Tenant) -> UnblockRequestQuerySet:
        return self.filter(tenant=tenant)

    def open(self) -> UnblockRequestQuerySet:
        return self.filter(state__in=OPEN_STATES)

    def overdue(self, hours: int) -> UnblockRequestQuerySet:
        return self.open().filter(submitted_at__lt=timezone.now() - timedelta(hours=hours))

    def assigned_to(self, user: AbstractBaseUser | AnonymousUser) -> UnblockRequestQuerySet:
        return self.filter(assignee_id=user.pk)

    def unassigned(self) -> UnblockRequestQuerySet:
        return self.filter(assignee__isnull=True)

    def failing(self, check: str) -> UnblockRequestQuerySet:
        return self.filter(failing_checks__contains=f",{check},")

    def search(self, text: str) -> UnblockRequestQuerySet:
        """Tenant name or external id, an address or block, or a sending domain."""
        text = text.strip()
        try:
            network = parse_block(text)
        except BlockError:
            pass
        else:
            blocks = RequestedBlock.objects.overlapping(network).values("request_id")
            return self.filter(pk__in=blocks)
        domains = self.annotate(domains_text=Upper(Cast("sending_domains", models.TextField())))
        if connection.vendor != "postgresql":
            return domains.filter(
                Q(tenant__name__icontains=text)
                | Q(tenant__external_id__iexact=text)
                | Q(domains_text__contains=text.upper())
            )
        # The tenants first, as a list (a few thousand rows at most): an OR with a join, or with
        # a subquery, makes PostgreSQL scan every request; `tenant_id IN (…) OR UPPER(…) LIKE`
        # is two index scans (the tenant index and request_domains_trgm) in one bitmap.
        tenants = list(
            Tenant.objects.filter(Q(name__icontains=text) | Q(external_id__iexact=text)).values_list(
                "pk", flat=True
            )
        )
        return domains.filter(Q(tenant_id__in=tenants) | Q(domains_text__contains=text.upper()))


IS_OPEN = Q(state__in=OPEN_STATES)


class UnblockRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.PROTECT, related_name="unblock_requests")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    # Drafts may be incomplete, so every field the customer fills in may be blank until submit.
    use_case = models.CharField(max_length=32, choices=UseCase.choices, blank=True)
    justification = models.TextField("Why port 587 or a relay won't do", blank=True)
    mail_software = models.CharField(max_length=200, blank=True)
    sending_domains = models.JSONField(default=list, blank=True)
    expected_daily_volume = models.PositiveIntegerField(null=True, blank=True)
    bounce_handling = models.TextField("How bounces and complaints are handled", blank=True)
    abuse_contact = models.EmailField(blank=True)
    aup_accepted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Copied from the latest vetting run so that the review queue can sort and filter on them.
    risk_score = models.PositiveIntegerField(null=True, blank=True)
    risk_band = models.CharField(max_length=8, blank=True)
    vetted_at = models.DateTimeField(null=True, blank=True)
    # ",rdns,spf," so that "failing check X" is a portable LIKE filter.
    failing_checks = models.CharField(max_length=300, blank=True)
    renewal_of = models.ForeignKey(
        "enforcement.Exemption", models.SET_NULL, null=True, blank=True, related_name="renewals"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="assigned_requests"
    )

    objects = UnblockRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "state"]),
            models.Index(fields=["state", "submitted_at"]),
            # The review queue in each of its sort orders, so that a page (keyset pagination) is a
            # range of an index rather than a sort of every open request; and its counts per
            # state and risk band from the index alone.
            models.Index(fields=["submitted_at", "id"], name="queue_by_age", condition=IS_OPEN),
            models.Index(
                Coalesce("risk_score", -1).desc(),
                "submitted_at",
                "id",
                name="queue_by_risk",
                condition=IS_OPEN,
            ),
            models.Index(fields=["state", "risk_band", "id"], name="queue_counts", condition=IS_OPEN),
            # The queue's free-text search (`search`): LIKE '%…%' on trigrams, PostgreSQL only
            # (the migration skips it elsewhere).
            GinIndex(
                OpClass(Upper(Cast("sending_domains", models.TextField())), name="gin_trgm_ops"),
                name="request_domains_trgm",
            ),
        ]

    def __str__(self) -> str:
        return f"Request {self.reference}"

    @property
    def reference(self) -> str:
        return str(self.id)[:8].upper()

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_editable(self) -> bool:
        return self.state == State.DRAFT

    def can(self, action: str) -> bool:
        sources, _ = TRANSITIONS[action]
        return self.state in sources

    def transition(self, action: str) -> tuple[str, str]:
        """Move to the state `action` leads to, or raise IllegalTransition.

        The UPDATE is conditional on the state this instance was read in, so of two concurrent
        callers exactly one wins and the other gets IllegalTransition with the state it lost to.
        """
        sources, target = TRANSITIONS[action]
        before = self.state
        if before not in sources:
            raise IllegalTransition(action, before)
        now = timezone.now()
        changes: dict[str, object] = {"state": target, "state_changed_at": now}
        if target == State.SUBMITTED:
            changes["submitted_at"] = now
        if target in (State.APPROVED, State.DENIED):
            changes["decided_at"] = now
        won = UnblockRequest.objects.filter(pk=self.pk, state=before).update(**changes)
        if won != 1:
            current = UnblockRequest.objects.values_list("state", flat=True).get(pk=self.pk)
            self.state = current
            raise IllegalTransition(action, current)
        for field, value in changes.items():
            setattr(self, field, value)
        return before, target


class RequestedBlockQuerySet(BlockQuerySet["RequestedBlock"]):
    def of_open_requests(self) -> RequestedBlockQuerySet:
        return self.filter(request__state__in=OPEN_STATES)


class RequestedBlock(IPBlock):
    """One address or CIDR block named in an unblock request."""

    request = models.ForeignKey(UnblockRequest, models.CASCADE, related_name="blocks")

    objects = RequestedBlockQuerySet.as_manager()

    class Meta:
        ordering = ["family", "first"]
        indexes = [models.Index(fields=["family", "first", "last"])]


class MessageKind(models.TextChoices):
    QUESTION = "question", "Question from the reviewer"
    ANSWER = "answer", "Answer from the customer"
    COMMENT = "comment", "Comment"
    NOTE = "note", "Internal note"


class MessageQuerySet(models.QuerySet["Message"]):
    def visible_to_customer(self) -> MessageQuerySet:
        return self.filter(internal=False)

    def questions(self) -> MessageQuerySet:
        return self.visible_to_customer().filter(kind=MessageKind.QUESTION)


class Message(models.Model):
    """The conversation between the customer and the reviewers, plus staff-only notes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(UnblockRequest, models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    body = models.TextField()
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.request}"
