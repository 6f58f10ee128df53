"""Reviewer API keys come from manage.py create_api_key and act as one staff user."""

from __future__ import annotations

from io import StringIO

from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from portal.accounts.models import ApiKey, Scope
from portal.audit.models import AuditEvent
from tests.base import make_user
from tests.review.base import ReviewTestCase


class CreateReviewerKeyTestCase(ReviewTestCase):
    def create(self, *args: str) -> str:
        out = StringIO()
        call_command("create_api_key", *args, stdout=out)
        return out.getvalue().strip()

    def test_it_creates_a_key_that_acts_as_the_user(self) -> None:
        key = self.create("--scope", "reviewer", "--name", "triage bot", "--user", "RITA@provider.example")
        api_key = ApiKey.authenticate(key)
        assert api_key is not None
        self.assertEqual(
            (api_key.scope, api_key.created_by, api_key.tenant), (Scope.REVIEWER, self.rita, None)
        )
        event = AuditEvent.objects.for_object(api_key).get()
        self.assertEqual(
            event.after, {"scope": "reviewer", "name": "triage bot", "user": "rita@provider.example"}
        )

        req = self.queued(self.acme, "203.0.113.5")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        r = client.post(f"/api/v1/review/requests/{req.id}/assign", {"assignee": None}, format="json")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(AuditEvent.objects.for_object(req).get().actor, self.rita)

    def test_it_requires_a_user_for_a_reviewer_key(self) -> None:
        with self.assertRaisesMessage(
            CommandError,
            "A reviewer key acts as one staff user (their roles, separation of duties and four-eyes "
            "apply): add --user EMAIL.",
        ):
            self.create("--scope", "reviewer", "--name", "bot")
        self.assertFalse(ApiKey.objects.exists())

    def test_it_names_a_user_it_cannot_use(self) -> None:
        gone = make_user("gone@provider.example", "reviewer")
        gone.is_active = False
        gone.save()
        cases = {
            "nobody@provider.example": "No active user has the email 'nobody@provider.example'.",
            "gone@provider.example": "No active user has the email 'gone@provider.example'.",
            "alice@acme.example": "alice@acme.example is not a reviewer, approver or admin.",
        }
        for email, message in cases.items():
            with self.subTest(email=email), self.assertRaisesMessage(CommandError, message):
                self.create("--scope", "reviewer", "--name", "bot", "--user", email)
        self.assertFalse(ApiKey.objects.exists())

    def test_it_refuses_an_ambiguous_email(self) -> None:
        make_user("RITA@PROVIDER.EXAMPLE", "reviewer")
        with self.assertRaisesMessage(CommandError, "More than one active user has the email"):
            self.create("--scope", "reviewer", "--name", "bot", "--user", "rita@provider.example")

    def test_it_refuses_a_user_for_other_scopes(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "--user only applies to reviewer keys, not enforcement keys."
        ):
            self.create("--scope", "enforcement", "--name", "fw", "--user", "rita@provider.example")
        self.assertFalse(ApiKey.objects.exists())
