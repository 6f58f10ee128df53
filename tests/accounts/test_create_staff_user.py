"""`manage.py create_staff_user`: staff accounts without `manage.py shell`."""

from __future__ import annotations

import io
from unittest import mock

from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from portal.accounts.models import roles_of
from portal.audit.models import AuditEvent
from tests.base import PortalTestCase


def create_staff_user(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    with mock.patch("sys.stdin", io.StringIO(stdin)):
        call_command("create_staff_user", *args, stdout=out)
    return out.getvalue()


class CreateStaffUserTestCase(PortalTestCase):
    def test_it_creates_a_reviewer_and_prints_a_set_password_link(self) -> None:
        out = create_staff_user("--email", "Vera@Provider.example", "--role", "reviewer")

        vera = User.objects.get(username="vera@provider.example")
        self.assertEqual(roles_of(vera), {"reviewer"})
        self.assertFalse(vera.has_usable_password())
        link = out.splitlines()[-1].split()[-1]
        self.assertIn("/reset/", link)
        page = self.client.get(link.removeprefix("http://127.0.0.1:8000"), follow=True)
        self.assertContains(page, "new_password1")
        self.assertTrue(AuditEvent.objects.filter(action="user.staff_roles", object_id=str(vera.pk)).exists())

    def test_it_reads_the_password_from_stdin(self) -> None:
        create_staff_user(
            "--email", "vera@provider.example", "--role", "approver", "--password-stdin",
            stdin="a-long-staff-password-25\n",
        )  # fmt: skip

        vera = User.objects.get(username="vera@provider.example")
        self.assertTrue(vera.check_password("a-long-staff-password-25"))
        self.assertEqual(roles_of(vera), {"reviewer", "approver"})

    def test_it_is_idempotent_and_only_adds_roles(self) -> None:
        create_staff_user("--email", "rita@provider.example", "--role", "reviewer")
        out = create_staff_user("--email", "rita@provider.example", "--role", "admin")
        again = create_staff_user("--email", "rita@provider.example", "--role", "reviewer")

        self.assertEqual(User.objects.filter(username="rita@provider.example").count(), 1)
        self.rita.refresh_from_db()
        self.assertTrue(self.rita.check_password("correct-horse-battery-25"), "the password is kept")
        self.assertEqual(
            set(self.rita.groups.values_list("name", flat=True)), {"reviewer", "approver", "admin"}
        )
        self.assertIn("added approver, admin", out)
        self.assertIn("added nothing", again)

    def test_it_refuses_a_weak_password(self) -> None:
        with self.assertRaisesMessage(CommandError, "too short"):
            create_staff_user(
                "--email", "vera@provider.example", "--role", "reviewer", "--password-stdin", stdin="abc\n"
            )
        self.assertFalse(User.objects.filter(username="vera@provider.example").exists())
