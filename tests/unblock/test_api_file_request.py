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

    def test_it_refuses_values_of_the_wrong_json_type(self) -> None:
        # The schema says boolean, string and integer: 0 for false or a number for text is a bug
        # in the caller's script, not a draft or a justification of "0".
        for field, value in (
            ("submit", 0),
            ("accept_aup", "yes"),
            ("justification", 0),
            ("expected_daily_volume", "500"),
            ("addresses", [10]),
        ):
            with self.subTest(field):
                r = self.api().post(
                    "/api/v1/requests/", complete_request_data(**{field: value}), format="json"
                )
                self.assertEqual(r.status_code, 400, r.content)
                self.assertIn(field, r.json())
        self.assertFalse(UnblockRequest.objects.exists())

    def test_it_refuses_a_withdrawal_reason_that_is_not_text(self) -> None:
        req = self.make_request(state=State.DRAFT)
        r = self.api().post(f"/api/v1/requests/{req.pk}/withdraw", {"reason": 0}, format="json")
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {"reason": ["Must be a string (in double quotes)."]})
        req.refresh_from_db()
        self.assertEqual(req.state, State.DRAFT)

    def test_it_refuses_a_page_size_that_is_not_a_number_in_range(self) -> None:
        for value in ("null", "0", "201", "1.5"):
            with self.subTest(value):
                r = self.api().get(f"/api/v1/requests/?page_size={value}")
                self.assertEqual(r.status_code, 400)
                self.assertEqual(r.json(), {"page_size": ["Give page_size as a whole number from 1 to 200."]})
        self.assertEqual(self.api().get("/api/v1/requests/?page_size=200").status_code, 200)
