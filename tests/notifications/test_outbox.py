"""The outbox: emails queued in the database are sent by the worker, once each."""

from __future__ import annotations

import signal
from datetime import timedelta
from io import StringIO

from django.core import mail
from django.core.management import call_command
from django.test import TransactionTestCase
from django.utils import timezone

from portal.notifications.models import EmailState, OutboundEmail
from portal.notifications.outbox import deliver_due_emails, queue_email
from tests.base import PortalTestCase


def queued(subject: str = "Hello", **fields: object) -> OutboundEmail:
    return OutboundEmail.objects.create(to=["alice@acme.example"], subject=subject, body="Body\n", **fields)


class OutboxTestCase(PortalTestCase):
    def test_it_sends_due_emails_and_marks_them_sent(self) -> None:
        email = queued("Request ABC is now submitted")
        self.assertEqual(deliver_due_emails(), 1)
        self.assertEqual(len(mail.outbox), 1)
        self.assertEqual(mail.outbox[0].subject, "Request ABC is now submitted")
        self.assertEqual(mail.outbox[0].to, ["alice@acme.example"])
        self.assertEqual(mail.outbox[0].from_email, "portal@localhost")
        email.refresh_from_db()
        self.assertEqual((email.state, email.attempts, email.claimed_until), (EmailState.SENT, 1, None))
        self.assertIsNotNone(email.sent_at)

    def test_it_does_not_send_twice(self) -> None:
        queued()
        self.assertEqual(deliver_due_emails(), 1)
        self.assertEqual(deliver_due_emails(), 0)
        self.assertEqual(len(mail.outbox), 1)

    def test_it_skips_a_row_another_worker_has_claimed(self) -> None:
        email = queued(claimed_until=timezone.now() + timedelta(minutes=1))
        self.assertEqual(deliver_due_emails(), 0)
        self.assertEqual(len(mail.outbox), 0)
        email.refresh_from_db()
        self.assertEqual((email.state, email.attempts), (EmailState.PENDING, 0))

    def test_it_takes_over_a_row_whose_claim_ran_out(self) -> None:
        queued(claimed_until=timezone.now() - timedelta(seconds=1), attempts=1)
        self.assertEqual(deliver_due_emails(), 1)
        self.assertEqual(len(mail.outbox), 1)

    def test_it_waits_until_an_email_is_due(self) -> None:
        email = queued(next_attempt_at=timezone.now() + timedelta(minutes=5))
        self.assertEqual(deliver_due_emails(), 0)
        OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        self.assertEqual(deliver_due_emails(), 1)

    def test_it_claims_a_row_only_once(self) -> None:
        email = queued()
        lease = timedelta(minutes=2)
        self.assertTrue(email.claim(lease))
        self.assertFalse(OutboundEmail.objects.get(pk=email.pk).claim(lease))

    def test_it_retries_a_failed_delivery_later_and_gives_up_in_the_end(self) -> None:
        email = queued()
        with self.settings(
            MAILERS={
                "default": {
                    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
                }
            },
            EMAIL_MAX_ATTEMPTS=2,
        ):
            self.assertEqual(deliver_due_emails(), 0)
            email.refresh_from_db()
            self.assertEqual((email.state, email.attempts), (EmailState.PENDING, 1))
            self.assertGreater(email.next_attempt_at, timezone.now())
            self.assertNotEqual(email.last_error, "")
            OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
            self.assertEqual(deliver_due_emails(), 0)
            email.refresh_from_db()
            self.assertEqual((email.state, email.attempts), (EmailState.FAILED, 2))
        self.assertEqual(deliver_due_emails(), 0)
        self.assertEqual(len(mail.outbox), 0)

    def test_it_renders_the_subject_from_the_first_line_of_the_template(self) -> None:
        req = self.make_request(self.acme)
        email = queue_email(
            to=["b@x.example", "a@x.example", "a@x.example", ""],
            template="emails/request_state_changed.txt",
            context={"req": req, "actor": "rita", "reason": "<why>"},
        )
        assert email is not None
        self.assertEqual(email.to, ["a@x.example", "b@x.example"])
        self.assertEqual(email.subject, f"[Egress Exemption Portal] Request {req.reference} is now submitted")
        self.assertIn("<why>", email.body)  # plain text: nothing to escape
        self.assertIsNone(queue_email(to=[""], template="emails/request_state_changed.txt", context={}))


class WorkerTestCase(TransactionTestCase):
    """The worker runs outside any transaction and recycles its database connection between
    rounds (close_old_connections), which would end a TestCase's wrapping transaction on
    PostgreSQL: so this one test commits for real."""

    def setUp(self) -> None:
        # runworker installs its own handlers; give the test runner its own back afterwards.
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))

    def test_it_delivers_what_is_due_and_exits_with_once(self) -> None:
        first, second = queued("one"), queued("two")
        call_command("runworker", "--once", stdout=StringIO())
        self.assertEqual(sorted(m.subject for m in mail.outbox), ["one", "two"])
        self.assertEqual(
            set(OutboundEmail.objects.filter(pk__in=[first.pk, second.pk]).values_list("state", flat=True)),
            {EmailState.SENT},
        )
