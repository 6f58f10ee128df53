"""Queueing email in the database and delivering it from the worker."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from portal.notifications.models import EmailState, OutboundEmail

log = logging.getLogger(__name__)


def queue_email(*, to: Iterable[str], template: str, context: dict[str, Any]) -> OutboundEmail | None:
    """Render `template` (first line is the subject) and queue it; call inside the transaction."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return None
    rendered = render_to_string(template, {"site_url": settings.SITE_URL, **context}).strip()
    subject, _, body = rendered.partition("\n")
    return OutboundEmail.objects.create(
        to=recipients, subject=subject.strip()[:200], body=body.strip() + "\n"
    )


def retry_delay(attempts: int) -> timedelta:
    base = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


def deliver_due_emails(limit: int = 50) -> int:
    """Send what is due; returns how many were sent. Safe to run in many workers at once."""
    sent = 0
    lease = timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    for email in OutboundEmail.objects.due().order_by("next_attempt_at")[:limit]:
        if not email.claim(lease):
            continue
        email.refresh_from_db(fields=["attempts"])
        try:
            EmailMessage(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, email.to).send()
        except Exception as exc:  # any SMTP/socket failure: record it and retry later
            log.warning("email %s failed (attempt %s): %s", email.pk, email.attempts, exc)
            give_up = email.attempts >= settings.EMAIL_MAX_ATTEMPTS
            OutboundEmail.objects.filter(pk=email.pk).update(
                state=EmailState.FAILED if give_up else EmailState.PENDING,
                next_attempt_at=timezone.now() + retry_delay(email.attempts),
                claimed_until=None,
                last_error=str(exc)[:2000],
            )
            continue
        OutboundEmail.objects.filter(pk=email.pk).update(
            state=EmailState.SENT, sent_at=timezone.now(), claimed_until=None
        )
        sent += 1
    return sent
