"""The reviewer API: the queue with its filters and pages, a request in full, and each decision."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.enforcement.models import Exemption
from portal.unblock.models import MessageKind, State
from tests.review.base import ReviewTestCase
from tests.review.test_request_page import vetted

UNKNOWN = "00000000-0000-0000-0000-000000000000"


class ReviewApiQueueTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.old = self.queued(
            self.acme,
            "203.0.113.5",
            state=State.IN_REVIEW,
            hours_ago=30,
            band="high",
            score=80,
            failing=("rdns",),
            assignee=self.rita,
        )
        self.new = self.queued(self.acme, "203.0.113.6", band="low", score=5, domains=("mail.acme.example",))
        self.globex_req = self.queued(
            self.globex,
            "198.51.100.72/29",
            state=State.NEEDS_INFO,
            hours_ago=5,
            band="medium",
            assignee=self.ada,
        )
        self.queued(self.acme, "203.0.113.7", state=State.DENIED)
        self.client_ = self.reviewer_api(self.rita)

    def ids(self, **params: Any) -> list[str]:
        r = self.client_.get("/api/v1/review/requests", params)
        self.assertEqual(r.status_code, 200, r.content)
        return [item["id"] for item in r.json()["results"]]

    def test_it_lists_open_requests_of_every_tenant_oldest_first(self) -> None:
        r = self.client_.get("/api/v1/review/requests")
        body = r.json()
        self.assertEqual(
            [item["id"] for item in body["results"]],
            [str(self.old.id), str(self.globex_req.id), str(self.new.id)],
        )
        item = body["results"][0]
        self.assertEqual(
            {k: v for k, v in item.items() if k not in ("submitted_at", "state_changed_at")},
            {
                "id": str(self.old.id),
                "reference": self.old.reference,
                "tenant": "acme-1",
                "tenant_name": "Acme Ltd",
                "state": "in_review",
                "addresses": ["203.0.113.5"],
                "use_case": "own_mail_server",
                "risk_score": 80,
                "risk_band": "high",
                "failing_checks": ["rdns"],
                "assignee": "rita@provider.example",
            },
        )
        assert self.old.submitted_at is not None
        self.assertEqual(datetime.fromisoformat(item["submitted_at"]), self.old.submitted_at)
        self.assertIsNone(body["next"])

    def test_it_filters_like_the_queue(self) -> None:
        old, new, globex = str(self.old.id), str(self.new.id), str(self.globex_req.id)
        cases: dict[str, tuple[dict[str, str], list[str]]] = {
            "state": ({"state": "needs_info"}, [globex]),
            "band": ({"band": "low"}, [new]),
            "overdue": ({"overdue": "true"}, [old]),
            "not overdue": ({"overdue": "false"}, [old, globex, new]),
            "assignee email": ({"assignee": "ADA@provider.example"}, [globex]),
            "assignee mine": ({"assignee": "mine"}, [old]),
            "unassigned": ({"assignee": "unassigned"}, [new]),
            "failing": ({"failing": "rdns"}, [old]),
            "tenant": ({"tenant": "globex-2"}, [globex]),
            "search name": ({"q": "globex"}, [globex]),
            "search address": ({"q": "198.51.100.73"}, [globex]),
            "search domain": ({"q": "mail.acme"}, [new]),
        }
        for name, (params, expected) in cases.items():
            with self.subTest(name):
                self.assertEqual(self.ids(**params), expected)

    def test_it_refuses_filters_it_does_not_know(self) -> None:
        cases = {
            "state": (
                {"state": "approved"},
                "Select a valid choice. approved is not one of the available choices.",
            ),
            "band": (
                {"band": "extreme"},
                "Select a valid choice. extreme is not one of the available choices.",
            ),
            "assignee": (
                {"assignee": "alice@acme.example"},
                "No active reviewer, approver or admin has the email alice@acme.example.",
            ),
            "failing": (
                {"failing": "astrology"},
                "Select a valid choice. astrology is not one of the available choices.",
            ),
        }
        for name, (params, message) in cases.items():
            with self.subTest(name):
                r = self.client_.get("/api/v1/review/requests", params)
                self.assertEqual(r.status_code, 400)
                self.assertEqual(r.json(), {name: [message]})

    def test_it_pages_with_a_cursor(self) -> None:
        for i in range(7):
            self.queued(self.acme, "203.0.113.9", hours_ago=2 + i / 10)
        seen: list[str] = []
        url: str | None = "/api/v1/review/requests?page_size=3"
        pages = 0
        while url:
            body = self.client_.get(url).json()
            seen += [item["id"] for item in body["results"]]
            url = body["next"]
            pages += 1
        self.assertEqual(pages, 4)
        self.assertEqual(len(seen), 10)
        self.assertEqual(len(set(seen)), 10)


class ReviewApiDetailTestCase(ReviewTestCase):
    def test_it_shows_the_checks_the_risk_breakdown_approvals_and_notes(self) -> None:
        req = self.queued(self.acme, "203.0.113.8/29", band="medium", score=45)
        vetted(req)
        req.messages.create(
            author_label="ada@provider.example", kind=MessageKind.NOTE, body="Known.", internal=True
        )
        client = self.reviewer_api(self.rita)
        client.post(f"/api/v1/review/requests/{req.id}/approve", {"note": "first"}, format="json")
        body = client.get(f"/api/v1/review/requests/{req.id}").json()
        self.assertEqual(body["four_eyes"], ["it covers a block larger than one address"])
        self.assertEqual(
            [(a["approver"], a["cidrs"], a["note"], a["final"]) for a in body["approvals"]],
            [("rita@provider.example", ["203.0.113.8/29"], "first", False)],
        )
        self.assertEqual([(m["kind"], m["internal"]) for m in body["messages"]], [("note", True)])
        vetting = body["vetting"]
        self.assertFalse(vetting["in_progress"])
        self.assertEqual(
            (vetting["latest"]["risk_score"], vetting["latest"]["risk_band"], vetting["latest"]["route"]),
            (45, "medium", "review"),
        )
        self.assertEqual(vetting["latest"]["breakdown"][0]["text"], "No reverse DNS for 203.0.113.5 (+30)")
        rdns = vetting["results"][0]
        self.assertEqual(
            (rdns["check"], rdns["title"], rdns["outcome"], rdns["score"], rdns["evidence"]["ptr"]),
            ("rdns", "Reverse DNS", "fail", 30, None),
        )
        self.assertEqual(body["justification"], "Own MX")

    def test_it_says_when_no_checks_have_run(self) -> None:
        req = self.queued(self.acme, "203.0.113.5")
        body = self.reviewer_api(self.rita).get(f"/api/v1/review/requests/{req.id}").json()
        self.assertEqual(body["vetting"], {"in_progress": False, "latest": None, "results": []})

    def test_it_is_404_for_unknown_ids(self) -> None:
        client = self.reviewer_api(self.rita)
        self.assertEqual(client.get(f"/api/v1/review/requests/{UNKNOWN}").status_code, 404)
        for action, body in (
            ("approve", {}),
            ("deny", {"reason": "x"}),
            ("request-info", {"question": "x"}),
            ("assign", {"assignee": None}),
        ):
            with self.subTest(action=action):
                r = client.post(f"/api/v1/review/requests/{UNKNOWN}/{action}", body, format="json")
                self.assertEqual(r.status_code, 404)
        self.assertEqual(client.get("/api/v1/review/requests/not-a-uuid").status_code, 404)


class ReviewApiDecisionTestCase(ReviewTestCase):
    def setUp(self) -> None:
        self.req = self.queued(self.acme, "203.0.113.5", "203.0.113.6")
        self.url = f"/api/v1/review/requests/{self.req.id}"
        self.client_ = self.reviewer_api(self.rita)

    def post(self, action: str, body: dict[str, Any]) -> Any:
        return self.client_.post(f"{self.url}/{action}", body, format="json")

    def test_it_approves_with_the_default_expiry(self) -> None:
        r = self.post("approve", {"note": "All good."})
        self.assertEqual(r.status_code, 200, r.content)
        body = r.json()
        self.assertTrue(body["final"])
        self.assertEqual(sorted(e["cidr"] for e in body["exemptions"]), ["203.0.113.5", "203.0.113.6"])
        expiry = datetime.fromisoformat(body["exemptions"][0]["expires_at"])
        self.assertAlmostEqual(expiry, timezone.now() + timedelta(days=365), delta=timedelta(minutes=1))
        self.assertEqual(body["request"]["state"], "approved")
        event = AuditEvent.objects.for_object(self.req).get(action="request.approve")
        self.assertEqual(
            (event.actor, event.actor_label, event.reason), (self.rita, "rita@provider.example", "All good.")
        )

    def test_it_approves_a_subset_until_a_chosen_date(self) -> None:
        until = timezone.now() + timedelta(days=30)
        r = self.post("approve", {"cidrs": ["203.0.113.6/32"], "expires_at": until.isoformat()})
        self.assertEqual(r.status_code, 200, r.content)
        exemption = Exemption.objects.get()
        self.assertEqual((exemption.cidr, exemption.expires_at), ("203.0.113.6", until))

    def test_it_refuses_bad_approvals(self) -> None:
        past = (timezone.now() - timedelta(days=1)).isoformat()
        cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
            "foreign address": (
                {"cidrs": ["203.0.113.7"]},
                {"cidrs": ["203.0.113.7 is not one of this request's addresses (203.0.113.5, 203.0.113.6)."]},
            ),
            "not an address": ({"cidrs": ["mail.acme.example"]}, {"cidrs": [None]}),
            "empty list": ({"cidrs": []}, {"cidrs": ["This list may not be empty."]}),
            "past expiry": ({"expires_at": past}, {"expires_at": ["The expiry must be in the future."]}),
        }
        for name, (body, errors) in cases.items():
            with self.subTest(name):
                r = self.post("approve", body)
                self.assertEqual(r.status_code, 400)
                for field, messages in errors.items():
                    if messages == [None]:
                        self.assertIn(field, r.json())
                    else:
                        self.assertEqual(r.json()[field], messages)
        self.assertFalse(Exemption.objects.exists())

    def test_it_denies(self) -> None:
        r = self.post("deny", {"reason": "Use port 587."})
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["state"], "denied")
        self.assertEqual(self.post("deny", {"reason": ""}).status_code, 400)
        r = self.post("deny", {"reason": "Again."})
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "A request that is denied can't be denied."})
        r = self.post("approve", {})
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json(), {"detail": "A request that is denied can't be approved."})
        self.assertEqual(self.post("request-info", {"question": "Why?"}).status_code, 409)
        self.assertEqual(self.post("assign", {"assignee": None}).status_code, 409)
        self.assertFalse(Exemption.objects.exists())

    def test_it_asks_for_information(self) -> None:
        self.assertEqual(self.post("request-info", {}).json(), {"question": ["This field is required."]})
        r = self.post("request-info", {"question": "Which selector?"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["state"], "needs_info")
        self.assertEqual(r.json()["messages"][0]["body"], "Which selector?")

    def test_it_assigns_and_releases(self) -> None:
        r = self.post("assign", {"assignee": "Ada@Provider.example"})
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual((r.json()["assignee"], r.json()["state"]), ("ada@provider.example", "in_review"))
        r = self.post("assign", {"assignee": None})
        self.assertEqual(r.json()["assignee"], None)
        self.assertEqual(self.post("assign", {}).json(), {"assignee": ["This field is required."]})
        r = self.post("assign", {"assignee": "alice@acme.example"})
        self.assertEqual(
            r.json(),
            {"assignee": ["No active reviewer, approver or admin has the email alice@acme.example."]},
        )
        self.assertEqual(self.post("assign", {"assignee": "not an email"}).status_code, 400)

    def test_it_acts_as_the_keys_user(self) -> None:
        self.post("assign", {"assignee": "rita@provider.example"})
        self.assertEqual(
            self.client_.get("/api/v1/review/requests", {"assignee": "mine"}).json()["results"][0]["id"],
            str(self.req.id),
        )
        event = AuditEvent.objects.for_object(self.req).get(action="review.assigned")
        self.assertEqual(event.actor, self.rita)

    def test_it_refuses_a_key_whose_user_lost_the_role_or_left(self) -> None:
        self.rita.groups.clear()
        r = self.post("deny", {"reason": "x"})
        self.assertEqual(r.status_code, 403)
        self.assertIn("not tied to an active reviewer, approver or admin", r.json()["detail"])
        self.ada.is_active = False
        self.ada.save()
        r = self.reviewer_api(self.ada).get("/api/v1/review/requests")
        self.assertEqual(r.status_code, 403)
        self.req.refresh_from_db()
        self.assertEqual(self.req.state, State.SUBMITTED)

    def test_it_refuses_a_reviewer_key_without_a_user(self) -> None:
        r = self.api("reviewer").get("/api/v1/review/requests")
        self.assertEqual(r.status_code, 403)
        self.assertEqual(
            r.json(),
            {
                "detail": "This reviewer key is not tied to an active reviewer, approver or admin; issue a "
                "new one with manage.py create_api_key --scope reviewer --user EMAIL."
            },
        )

    def test_it_describes_the_operations_in_the_openapi_document(self) -> None:
        r = self.client.get("/api/v1/schema", headers={"Accept": "application/json"})
        self.assertEqual(r.status_code, 200)
        schema = r.content.decode()
        for operation in (
            "review_requests_list",
            "review_requests_retrieve",
            "review_requests_approve",
            "review_requests_deny",
            "review_requests_request_info",
            "review_requests_assign",
        ):
            self.assertIn(operation, schema)
