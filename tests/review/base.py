"""Helpers for the reviewer workspace's tests: reviewer API keys and requests as vetting leaves them."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import ApiKey, Scope, Tenant
from portal.unblock.models import State, UnblockRequest
from tests.base import PortalTestCase


class ReviewTestCase(PortalTestCase):
    def reviewer_api(self, user: User) -> APIClient:
        """An API client with a reviewer key that acts as `user`."""
        _, key = ApiKey.issue(
            name=f"{user.email} tooling", scope=Scope.REVIEWER, tenant=None, created_by=user
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    _next_host = 6

    def fresh_address(self) -> str:
        """An Acme address no earlier request of this test used (approvals exempt addresses)."""
        type(self)._next_host += 1
        return f"203.0.113.{type(self)._next_host % 58 + 6}"

    def queued(
        self,
        tenant: Tenant | None = None,
        *cidrs: str,
        state: str = State.SUBMITTED,
        hours_ago: float = 1,
        band: str = "",
        score: int | None = None,
        failing: tuple[str, ...] = (),
        assignee: User | None = None,
        domains: tuple[str, ...] = ("example.com",),
    ) -> UnblockRequest:
        """A request in the queue as the vetting worker leaves it: scored, with failing checks."""
        req = self.make_request(tenant, *cidrs, state=state)
        req.submitted_at = timezone.now() - timedelta(hours=hours_ago)
        req.risk_band = band
        req.risk_score = score
        req.failing_checks = f",{','.join(failing)}," if failing else ""
        req.assignee = assignee
        req.sending_domains = list(domains)
        req.save()
        return req
