from __future__ import annotations

from django.core import mail

from portal.audit.models import AuditEvent
from portal.notifications.models import OutboundEmail
from portal.unblock.models import State, UnblockRequest
from tests.base import PortalTestCase, complete_request_data


class FileRequestApiTestCase(PortalTestCase):
    def test_it_files_and_submits_a_request(self) -> None:
        r = self.api().post("/api/v1/requests/", complete_request_data(), format="json")
        self.assertEqual(r.status_code, 201, r.content)
        req = UnblockRequest.objects.get(pk=r.json()["id"])
        self.assertEqual(req.state, State.SUBMITTED)
        self.assertEqual([b.cidr for b in req.blocks.all()], ["203.0.113.10"])
        self.assertEqual(r.json()["addresses"], ["203.0.113.10"])
        actions = list(AuditEvent.objects.for_object(req).order_by("id").values_list("action", flat=True))
        self.assertEqual(actions, ["request.created", "request.submit"])
        email = OutboundEmail.objects.get()
        self.assertEqual(email.to, ["alice@acme.example"])
        self.assertIn("submitted", email.subject)
        self.assertEqual(len(mail.outbox), 0)  # sent by the worker, not inside the request
