from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from portal.accounts.models import STAFF_ROLES, Actor
from portal.audit.log import record
from portal.workflows.provisioning import set_password_url

# Each role includes the ones before it: an approver also reviews, an admin does both.
IMPLIED = {role: STAFF_ROLES[: i + 1] for i, role in enumerate(STAFF_ROLES)}


class Command(BaseCommand):
    help = (
        "Create a staff user, or give an existing one a role (never takes roles away), and print a "
        "link to set the password; --password-stdin reads the password instead."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read the password from the first line of stdin."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an email address.") from None
        password = self.read_password() if options["password_stdin"] else None
        roles = IMPLIED[options["role"]]
        with transaction.atomic(durable=True):
            user, created = User.objects.get_or_create(username=email, defaults={"email": email})
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from None
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            held = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
            before = [role for role in STAFF_ROLES if role in held]
            user.groups.add(*[Group.objects.get_or_create(name=role)[0] for role in roles])
            if "admin" in roles:
                # The Django admin needs both flags; the portal's own pages only look at the groups.
                user.is_staff = user.is_superuser = True
            user.save()
            after = [role for role in STAFF_ROLES if role in before or role in roles]
            if created or after != before:
                record(
                    actor=Actor.of_system("manage.py create_staff_user"),
                    action="user.staff_roles",
                    obj=user,
                    before={"roles": before},
                    after={"roles": after},
                )
        added = [role for role in after if role not in before]
        status = "created" if created else f"already there, added {', '.join(added) or 'nothing'}"
        self.stdout.write(f"{email}: {status}; roles {', '.join(after)}")
        if not user.has_usable_password():
            self.stdout.write(f"Set the password at (valid for a few days): {set_password_url(user)}")

    def read_password(self) -> str:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin: the first line of stdin is empty.")
        return password
