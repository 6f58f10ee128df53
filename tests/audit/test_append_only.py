"""Audit events are append-only: not through the ORM, and on PostgreSQL not even through SQL."""

from __future__ import annotations

from unittest import skipUnless

from django.db import DatabaseError, connection, transaction

from portal.accounts.models import Actor
from portal.audit.log import record
from portal.audit.models import AuditEvent
from tests.base import PortalTestCase, make_user

ON_POSTGRESQL = connection.vendor == "postgresql"


class RecordedEventTestCase(PortalTestCase):
    """One event, recorded the way the portal records them."""

    def setUp(self) -> None:
        self.event = record(
            actor=Actor(user=self.rita),
            action="tenant.updated",
            obj=self.acme,
            tenant_id=self.acme.pk,
            before={"name": "Acme"},
            after={"name": "Acme Ltd"},
            reason="rename",
        )

    def assertUnchanged(self) -> None:
        event = AuditEvent.objects.get(pk=self.event.pk)
        self.assertEqual(
            (event.action, event.actor_label, event.before, event.after, event.reason),
            ("tenant.updated", "rita@provider.example", {"name": "Acme"}, {"name": "Acme Ltd"}, "rename"),
        )


class AppendOnlyTestCase(RecordedEventTestCase):
    def test_it_records_who_did_what_to_which_object(self) -> None:
        self.assertEqual(self.event.actor, self.rita)
        self.assertEqual(self.event.object_type, "accounts.tenant")
        self.assertEqual(self.event.object_id, str(self.acme.pk))
        self.assertEqual(self.event.object_label, "Acme Ltd (acme-1)")
        self.assertEqual(list(AuditEvent.objects.for_object(self.acme)), [self.event])

    def test_it_refuses_to_save_an_event_again(self) -> None:
        self.event.action = "tenant.deleted"
        with self.assertRaisesMessage(PermissionError, "Audit events are append-only."):
            self.event.save()
        self.assertUnchanged()

    def test_it_refuses_to_delete_an_event(self) -> None:
        with self.assertRaisesMessage(PermissionError, "Audit events are append-only."):
            self.event.delete()
        self.assertUnchanged()

    def test_it_refuses_bulk_updates_and_deletes(self) -> None:
        with self.assertRaisesMessage(PermissionError, "Audit events are append-only."):
            AuditEvent.objects.filter(pk=self.event.pk).update(reason="nothing happened")
        with self.assertRaisesMessage(PermissionError, "Audit events are append-only."):
            AuditEvent.objects.all().delete()
        self.assertUnchanged()

    def test_it_keeps_the_event_when_its_actor_is_deleted(self) -> None:
        temp = make_user("temp@provider.example", "reviewer")
        event = record(actor=Actor(user=temp), action="tenant.updated", obj=self.acme)
        temp.delete()
        event = AuditEvent.objects.get(pk=event.pk)
        self.assertIsNone(event.actor)
        self.assertEqual(event.actor_label, "temp@provider.example")


@skipUnless(ON_POSTGRESQL, "the append-only trigger is installed on PostgreSQL only (migration audit 0002)")
class AppendOnlyTriggerTestCase(RecordedEventTestCase):
    def raw(self, sql: str) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [self.event.pk])

    def test_it_refuses_a_raw_update(self) -> None:
        for column, value in (("reason", "'nothing happened'"), ("action", "'x'"), ("after", "'{}'::jsonb")):
            with (
                self.subTest(column=column),
                self.assertRaisesMessage(DatabaseError, "audit events are append-only"),
            ):
                self.raw(f"UPDATE audit_auditevent SET {column} = {value} WHERE id = %s")
        self.assertUnchanged()

    def test_it_refuses_a_raw_delete(self) -> None:
        with self.assertRaisesMessage(DatabaseError, "audit events are append-only"):
            self.raw("DELETE FROM audit_auditevent WHERE id = %s")
        self.assertUnchanged()

    def test_it_allows_clearing_the_actor_and_tenant(self) -> None:
        # What ON DELETE SET NULL does when a user or tenant goes away.
        self.raw("UPDATE audit_auditevent SET actor_id = NULL, tenant_id = NULL WHERE id = %s")
        self.assertIsNone(AuditEvent.objects.get(pk=self.event.pk).actor_id)
        self.assertUnchanged()
