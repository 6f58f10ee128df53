from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.accounts.models import Actor, ApiKey, Scope, Tenant, is_staff_member
from portal.audit.log import record


class Command(BaseCommand):
    help = "Create an API key and print it (it is shown only this once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--scope", required=True, choices=Scope.values)
        parser.add_argument("--name", required=True, help="What uses the key, e.g. 'billing sync'.")
        parser.add_argument("--tenant", help="External id of the tenant (required for customer keys).")
        parser.add_argument(
            "--user", help="Email of the staff user a reviewer key acts as (required for reviewer keys)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scope, name, external_id = options["scope"], options["name"].strip(), options["tenant"]
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        tenant = None
        if scope == Scope.CUSTOMER:
            if not external_id:
                raise CommandError("A customer key belongs to one tenant: add --tenant EXTERNAL_ID.")
            tenant = Tenant.objects.filter(external_id=external_id).first()
            if tenant is None:
                raise CommandError(f"No tenant has the external id {external_id!r}.")
        elif external_id:
            raise CommandError(f"--tenant only applies to customer keys, not {scope} keys.")
        user = self.staff_user(options["user"]) if scope == Scope.REVIEWER else None
        if user is None and options["user"]:
            raise CommandError(f"--user only applies to reviewer keys, not {scope} keys.")
        with transaction.atomic(durable=True):
            api_key, secret = ApiKey.issue(name=name, scope=scope, tenant=tenant, created_by=user)
            after = {"scope": scope, "name": name}
            if user is not None:
                after["user"] = user.email
            record(
                actor=Actor.of_system("manage.py create_api_key"),
                action="api_key.created",
                obj=api_key,
                tenant_id=tenant.pk if tenant else None,
                after=after,
            )
        self.stdout.write(secret)

    def staff_user(self, email: str | None) -> User:
        """The user a reviewer key acts as: its roles and tenant memberships bind the key."""
        if not email:
            raise CommandError(
                "A reviewer key acts as one staff user (their roles, separation of duties and "
                "four-eyes apply): add --user EMAIL."
            )
        users = list(User.objects.filter(email__iexact=email.strip(), is_active=True)[:2])
        if len(users) != 1:
            found = "No active user has" if not users else "More than one active user has"
            raise CommandError(f"{found} the email {email!r}.")
        if not is_staff_member(users[0]):
            raise CommandError(f"{users[0].email} is not a reviewer, approver or admin.")
        return users[0]
