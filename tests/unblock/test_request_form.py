"""The new-request form: every error at once with a summary, marks, and starting from a denial."""

from __future__ import annotations

from portal.unblock.models import State, UnblockRequest
from portal.workflows import decisions
from tests.base import PortalTestCase, make_request


class ErrorSummaryTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.client.force_login(self.alice)

    def test_it_reports_a_bad_address_and_every_blank_field_in_one_round(self) -> None:
        r = self.client.post(
            "/requests/new/", {"tenant": self.acme.pk, "addresses": "198.51.100.70", "action": "submit"}
        )
        self.assertEqual(r.status_code, 200)
        errors = r.context["form"].errors
        self.assertEqual(
            set(errors),
            {
                "addresses",
                "use_case",
                "justification",
                "mail_software",
                "sending_domains",
                "expected_daily_volume",
                "bounce_handling",
                "abuse_contact",
                "accept_aup",
            },
        )
        # The invalid field says what is wrong with it, not that it is missing.
        self.assertEqual(len(errors["addresses"]), 1)
        self.assertIn("is not inside any block allocated to Acme Ltd", errors["addresses"][0])
        self.assertFalse(UnblockRequest.objects.exists())

    def test_it_puts_a_summary_linking_to_each_field_at_the_top(self) -> None:
        r = self.client.post(
            "/requests/new/",
            {"tenant": self.acme.pk, "addresses": "", "mail_software": "Exim", "action": "submit"},
        )
        html = r.content.decode()
        summary = html.index("There are problems to fix before submitting")
        self.assertLess(summary, html.index('id="request-form"'))
        self.assertIn('<a href="#id_addresses">Enter at least one address or block.</a>', html)
        self.assertIn('<a href="#id_use_case_0">Choose what the mail server is for.</a>', html)
        self.assertNotIn('href="#id_mail_software"', html)
        self.assertIn("data-error-summary", html)

    def test_it_shows_no_summary_on_a_fresh_form(self) -> None:
        self.assertNotContains(self.client.get("/requests/new/"), "data-error-summary")

    def test_it_marks_the_fields_a_submission_requires(self) -> None:
        html = self.client.get("/requests/new/").content.decode()
        self.assertEqual(html.count('<span class="field-required">(required)</span>'), 9)
        self.assertIn("you can save a draft with some left blank", html)

    def test_it_saves_a_draft_with_blanks(self) -> None:
        r = self.client.post("/requests/new/", {"tenant": self.acme.pk, "addresses": "", "action": "draft"})
        self.assertEqual(r.status_code, 302)
        self.assertEqual(UnblockRequest.objects.get().state, State.DRAFT)


class NewFromDeniedTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.denied = make_request(self.acme, "203.0.113.5")
        decisions.deny(req=self.denied, user=self.rita, reason="No reverse DNS.")
        self.client.force_login(self.alice)

    def test_it_prefills_the_form_from_the_denied_request(self) -> None:
        r = self.client.get(f"/requests/new/?from={self.denied.id}")
        form = r.context["form"]
        self.assertEqual(form.initial["addresses"], "203.0.113.5")
        self.assertEqual(form.initial["mail_software"], "Postfix")
        self.assertEqual(form.initial["sending_domains"], "example.com")
        # Accepting the policy is a fresh decision each time.
        self.assertFalse(form.initial["accept_aup"])
        self.assertContains(
            r, f'This form starts as a copy of request <a href="/requests/{self.denied.id}/">'
        )

    def test_it_files_the_copy_as_a_new_request(self) -> None:
        self.client.get(f"/requests/new/?from={self.denied.id}")
        self.denied.refresh_from_db()
        self.assertEqual(self.denied.state, State.DENIED)
        self.assertEqual(UnblockRequest.objects.count(), 1)

    def test_it_is_404_for_another_tenants_request(self) -> None:
        theirs = make_request(self.globex, "198.51.100.70")
        self.assertEqual(self.client.get(f"/requests/new/?from={theirs.id}").status_code, 404)

    def test_it_is_404_for_a_malformed_id(self) -> None:
        self.assertEqual(self.client.get("/requests/new/?from=not-a-uuid").status_code, 404)
