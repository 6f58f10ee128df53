"""Every rule a request must follow, through the web form and through the API alike."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.test import override_settings
from django.utils.html import escape

from portal.enforcement.models import Exemption
from portal.unblock.models import State, UnblockRequest, UseCase
from portal.unblock.rules import BULK_REFUSAL
from tests.base import PortalTestCase, complete_request_data


def form_data(action: str = "submit", **overrides: Any) -> dict[str, Any]:
    """The web form's POST body for the same request as complete_request_data()."""
    data = complete_request_data(**overrides)
    post: dict[str, Any] = {key: value for key, value in data.items() if key != "accept_aup"}
    post["addresses"] = "\n".join(data["addresses"])
    post["sending_domains"] = "\n".join(data["sending_domains"])
    if data["expected_daily_volume"] is None:
        post["expected_daily_volume"] = ""
    if data["accept_aup"]:
        post["accept_aup"] = "on"
    post["action"] = action
    return post


class RequestValidationTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.client.force_login(self.alice)

    def post_form(self, action: str = "submit", **overrides: Any) -> Any:
        return self.client.post("/requests/new/", {"tenant": self.acme.pk, **form_data(action, **overrides)})

    def post_api(self, **overrides: Any) -> Any:
        return self.api().post("/api/v1/requests/", complete_request_data(**overrides), format="json")

    def assertRefused(self, field: str, message: str, **overrides: Any) -> None:
        """Neither the form nor the API saves the request, and both say `message` about `field`."""
        before = UnblockRequest.objects.count()
        for action in ("submit", "draft"):
            r = self.post_form(action, **overrides)
            self.assertEqual(r.status_code, 200, f"form ({action}) accepted {overrides}")
            self.assertIn(message, r.context["form"].errors.get(field, []), r.context["form"].errors)
            self.assertContains(r, escape(message))
        r = self.post_api(**overrides)
        self.assertEqual(r.status_code, 400, r.content)
        self.assertIn(message, r.json()[field])
        self.assertEqual(UnblockRequest.objects.count(), before)

    def assertAccepted(self, addresses: list[str], stored: list[str]) -> None:
        """Both the form and the API save `addresses` (as drafts, so that they don't clash) as `stored`."""
        r = self.post_form("draft", addresses=addresses)
        self.assertEqual(r.status_code, 302, r.context and r.context["form"].errors)
        req = UnblockRequest.objects.latest("created_at")
        self.assertEqual([b.cidr for b in req.blocks.all()], stored)
        r = self.post_api(addresses=addresses, submit=False)
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(r.json()["addresses"], stored)

    def test_it_refuses_malformed_addresses(self) -> None:
        usage = "Use a form such as 203.0.113.10, 203.0.113.8/29 or 2001:db8::25."
        cases = {
            "300.1.1.1": f"“300.1.1.1” is not an IP address or CIDR block. {usage}",
            "abc": f"“abc” is not an IP address or CIDR block. {usage}",
            "203.0.113.1/33": "“203.0.113.1/33” has a prefix length over /32; "
            "IPv4 prefixes go from /0 to /32.",
            "203.0.113.1/x": "“203.0.113.1/x” has an invalid prefix length; write it as a number, "
            "e.g. 203.0.113.1/29.",
        }
        for address, message in cases.items():
            with self.subTest(address=address):
                self.assertRefused("addresses", message, addresses=[address])

    def test_it_names_the_block_when_host_bits_are_set(self) -> None:
        self.assertRefused(
            "addresses",
            "“203.0.113.9/29” has host bits set; the block containing it is 203.0.113.8/29. "
            "Enter 203.0.113.8/29, or the single address 203.0.113.9.",
            addresses=["203.0.113.9/29"],
        )

    def test_it_accepts_ipv6_in_any_spelling_and_stores_it_compressed(self) -> None:
        self.assertAccepted(["2001:0db8:000a:0000:0000:0000:0000:0025"], ["2001:db8:a::25"])
        self.assertAccepted(["2001:db8:a::25"], ["2001:db8:a::25"])

    def test_it_accepts_an_ipv6_64(self) -> None:
        self.assertAccepted(["2001:db8:a:1::/64"], ["2001:db8:a:1::/64"])

    def test_it_refuses_an_ipv6_block_larger_than_a_64(self) -> None:
        self.assertRefused(
            "addresses",
            "2001:db8:a::/48 is too large: one request may name blocks up to /64 for IPv6. It would "
            "take 65,536 blocks of /64, and a request takes at most 16 entries. List only the "
            "addresses that send mail, one per line (a mail server usually needs one or two), or "
            "the /64 blocks they are in.",
            addresses=["2001:db8:a::/48"],
        )

    def test_it_names_the_ipv6_block_when_host_bits_are_set(self) -> None:
        self.assertRefused(
            "addresses",
            "“2001:db8:a::1/64” has host bits set; the block containing it is 2001:db8:a::/64. "
            "Enter 2001:db8:a::/64, or the single address 2001:db8:a::1.",
            addresses=["2001:db8:a::1/64"],
        )

    def test_it_refuses_an_ipv6_zone_index(self) -> None:
        self.assertRefused(
            "addresses",
            "“2001:db8:a::25%eth0” has a zone index (%eth0); enter the address without it, "
            "e.g. 2001:db8:a::25.",
            addresses=["2001:db8:a::25%eth0"],
        )

    def test_it_refuses_an_address_of_another_tenant(self) -> None:
        self.assertRefused(
            "addresses",
            "198.51.100.70 is not inside any block allocated to Acme Ltd. "
            "Enter an address or block from your account's IP allocations.",
            addresses=["198.51.100.70"],
        )

    def test_it_refuses_an_address_of_a_released_allocation(self) -> None:
        released = self.acme.allocations.get(cidr="192.0.2.0/28").released_at
        assert released is not None
        self.assertRefused(
            "addresses",
            f"192.0.2.5 was in 192.0.2.0/28, which Acme Ltd released on {released:%Y-%m-%d}. "
            "Enter an address from a block you hold now.",
            addresses=["192.0.2.5"],
        )

    def test_it_refuses_an_oversized_block_naming_the_blocks_that_fit_in_one_request(self) -> None:
        self.assertRefused(
            "addresses",
            "203.0.113.0/26 is too large: one request may name blocks up to /28 for IPv4. Enter it "
            "as these 4 blocks instead: 203.0.113.0/28, 203.0.113.16/28, 203.0.113.32/28, "
            "203.0.113.48/28.",
            addresses=["203.0.113.0/26"],
        )

    def test_it_accepts_the_blocks_its_advice_names(self) -> None:
        blocks = ["203.0.113.0/28", "203.0.113.16/28", "203.0.113.32/28", "203.0.113.48/28"]
        self.assertAccepted(blocks, blocks)

    def test_it_advises_listing_the_sending_addresses_when_splitting_cannot_fit(self) -> None:
        self.assertRefused(
            "addresses",
            "203.0.0.0/16 is too large: one request may name blocks up to /28 for IPv4. It would "
            "take 4,096 blocks of /28, and a request takes at most 16 entries. List only the "
            "addresses that send mail, one per line (a mail server usually needs one or two), or "
            "the /28 blocks they are in.",
            addresses=["203.0.0.0/16"],
        )

    def test_it_accepts_the_largest_allowed_block(self) -> None:
        self.assertAccepted(["203.0.113.16/28"], ["203.0.113.16/28"])

    def test_it_refuses_too_many_addresses(self) -> None:
        limit = settings.MAX_ADDRESSES_PER_REQUEST
        addresses = [f"203.0.113.{n}" for n in range(1, limit + 2)]
        self.assertRefused(
            "addresses",
            f"Enter at most {limit} addresses or blocks per request (you entered {limit + 1}); "
            "file another request for the rest.",
            addresses=addresses,
        )

    @override_settings(MAX_ADDRESSES_PER_REQUEST=3)
    def test_it_takes_the_address_limit_from_the_settings(self) -> None:
        self.assertRefused(
            "addresses",
            "Enter at most 3 addresses or blocks per request (you entered 4); "
            "file another request for the rest.",
            addresses=["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"],
        )
        self.assertAccepted(
            ["203.0.113.1", "203.0.113.2", "203.0.113.3"], ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        )

    def test_it_refuses_overlapping_entries_in_one_request(self) -> None:
        self.assertRefused(
            "addresses",
            "203.0.113.10 overlaps 203.0.113.8/29, which is already in this list; enter it once.",
            addresses=["203.0.113.8/29", "203.0.113.10"],
        )
        self.assertRefused(
            "addresses",
            "203.0.113.10 overlaps 203.0.113.10, which is already in this list; enter it once.",
            addresses=["203.0.113.10", "203.0.113.10"],
        )

    def test_it_lists_every_bad_address_at_once(self) -> None:
        r = self.post_api(addresses=["abc", "203.0.113.10", "198.51.100.70"])
        self.assertEqual(r.status_code, 400)
        self.assertEqual(len(r.json()["addresses"]), 2)
        self.assertIn("“abc”", r.json()["addresses"][0])
        self.assertIn("198.51.100.70", r.json()["addresses"][1])

    def test_it_refuses_overlong_text(self) -> None:
        self.assertRefused(
            "justification",
            "The justification is 4001 characters long; shorten it to 4000 or fewer.",
            justification="x" * 4001,
        )
        r = self.post_form("draft", bounce_handling="y" * 4001)
        self.assertIn(
            "The description is 4001 characters long; shorten it to 4000 or fewer.",
            r.context["form"].errors["bounce_handling"],
        )
        r = self.post_api(bounce_handling="y" * 4001)
        self.assertEqual(
            r.json()["bounce_handling"],
            ["The bounce handling description is 4001 characters long; shorten it to 4000 or fewer."],
        )

    def test_it_accepts_text_of_exactly_the_limit(self) -> None:
        r = self.post_api(justification="x" * 4000)
        self.assertEqual(r.status_code, 201, r.content)

    def test_it_saves_unicode_and_html_as_text_and_escapes_it_on_the_page(self) -> None:
        text = "<script>alert(1)</script> ünïcødé “quotes” & 日本語"
        r = self.post_form("submit", justification=text, mail_software="<b>Postfix</b>")
        self.assertEqual(r.status_code, 302)
        req = UnblockRequest.objects.get()
        self.assertEqual(req.justification, text)
        self.assertEqual(req.mail_software, "<b>Postfix</b>")
        page = self.client.get(f"/requests/{req.id}/")
        self.assertContains(page, "&lt;script&gt;alert(1)&lt;/script&gt; ünïcødé “quotes” &amp; 日本語")
        self.assertContains(page, "&lt;b&gt;Postfix&lt;/b&gt;")
        self.assertNotContains(page, "<script>alert(1)")
        self.assertNotContains(page, "<b>Postfix")

        r = self.post_api(addresses=["203.0.113.11"], justification=text)
        self.assertEqual(r.status_code, 201)
        self.assertEqual(r.json()["justification"], text)
        self.assertEqual(UnblockRequest.objects.get(pk=r.json()["id"]).justification, text)

    def test_it_refuses_bulk_marketing_and_explains_why(self) -> None:
        self.assertRefused("use_case", BULK_REFUSAL, use_case=UseCase.BULK_MARKETING)

    def test_it_refuses_an_unknown_use_case(self) -> None:
        r = self.post_api(use_case="spam")
        self.assertEqual(r.status_code, 400)
        self.assertIn("use_case", r.json())

    def test_it_refuses_bad_domain_names(self) -> None:
        for domain in (
            "not a domain",
            "localhost",
            "-acme.example",
            "acme..example",
            "exa_mple.com",
            "a" * 64 + ".com",
        ):
            with self.subTest(domain=domain):
                message = (
                    f"“{domain}” is not a domain name. "
                    "Enter the domain in your From: addresses, e.g. example.com."
                )
                if " " in domain:
                    # The form splits on spaces, so each word is checked on its own.
                    r = self.post_api(sending_domains=[domain])
                    self.assertEqual(r.status_code, 400)
                    self.assertEqual(r.json()["sending_domains"], [message])
                else:
                    self.assertRefused("sending_domains", message, sending_domains=[domain])

    def test_it_normalises_domains_and_accepts_international_ones(self) -> None:
        r = self.post_api(sending_domains=["Acme.Example.", "bücher.example", "acme.example"])
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(r.json()["sending_domains"], ["acme.example", "xn--bcher-kva.example"])

    def test_it_refuses_too_many_domains(self) -> None:
        domains = [f"d{n}.example" for n in range(21)]
        self.assertRefused(
            "sending_domains", "Enter at most 20 sending domains (you entered 21).", sending_domains=domains
        )

    def test_it_refuses_a_volume_out_of_range(self) -> None:
        for volume in (0, -5, 10_000_001):
            with self.subTest(volume=volume):
                r = self.post_api(expected_daily_volume=volume)
                self.assertEqual(r.status_code, 400)
                self.assertEqual(
                    r.json()["expected_daily_volume"],
                    ["Enter the expected messages per day as a number from 1 to 10,000,000."],
                )
                r = self.post_form("submit", expected_daily_volume=volume)
                self.assertEqual(r.status_code, 200)
                self.assertIn("expected_daily_volume", r.context["form"].errors)
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_refuses_an_invalid_abuse_contact(self) -> None:
        for contact in ("not-an-email", "abuse@", "abuse@acme example"):
            with self.subTest(contact=contact):
                self.assertRefused(
                    "abuse_contact",
                    "Enter an email address where abuse reports reach you, e.g. abuse@example.com.",
                    abuse_contact=contact,
                )

    def test_it_requires_every_field_to_submit(self) -> None:
        empty: dict[str, Any] = {
            "addresses": [],
            "use_case": "",
            "justification": "",
            "mail_software": "",
            "sending_domains": [],
            "expected_daily_volume": None,
            "bounce_handling": "",
            "abuse_contact": "",
            "accept_aup": False,
        }
        expected = {
            "addresses": "Enter at least one address or block.",
            "use_case": "Choose what the mail server is for.",
            "justification": "Explain why port 587 or a relay service won't do.",
            "mail_software": "Name the mail server software, e.g. Postfix 3.8.",
            "sending_domains": "Enter at least one domain you send mail from.",
            "expected_daily_volume": "Enter how many messages a day you expect to send.",
            "bounce_handling": "Describe how you handle bounces and complaints.",
            "abuse_contact": "Enter an email address where abuse reports reach you.",
            "accept_aup": "Accept the acceptable-use policy to submit the request.",
        }
        r = self.post_form("submit", **empty)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(dict(r.context["form"].errors), {k: [v] for k, v in expected.items()})
        r = self.post_api(**empty)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {k: [v] for k, v in expected.items()})
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_saves_an_incomplete_draft(self) -> None:
        r = self.post_form("draft", use_case="", justification="", sending_domains=[], accept_aup=False)
        self.assertEqual(r.status_code, 302)
        draft = UnblockRequest.objects.get()
        self.assertEqual(r["Location"], f"/requests/{draft.id}/")
        self.assertEqual((draft.state, draft.use_case, draft.aup_accepted_at), (State.DRAFT, "", None))

        r = self.post_api(submit=False, addresses=["203.0.113.11"], use_case="", expected_daily_volume=None)
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(r.json()["state"], State.DRAFT)
        self.assertEqual(r.json()["expected_daily_volume"], None)

    def test_it_still_checks_the_rules_for_a_draft(self) -> None:
        r = self.post_api(submit=False, addresses=["198.51.100.70"])
        self.assertEqual(r.status_code, 400)
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_refuses_the_same_submission_twice(self) -> None:
        self.assertEqual(self.post_form("submit").status_code, 302)
        first = UnblockRequest.objects.get()
        self.assertRefused(
            "addresses",
            f"203.0.113.10 is already in open request {first.reference} (submitted); "
            "wait for its decision or withdraw it first.",
        )

    def test_it_refuses_an_address_inside_a_block_of_an_open_request(self) -> None:
        earlier = self.make_request(self.acme, "203.0.113.8/29", state=State.NEEDS_INFO)
        self.assertRefused(
            "addresses",
            f"203.0.113.10 is already in open request {earlier.reference} (needs information); "
            "wait for its decision or withdraw it first.",
        )

    def test_it_allows_an_address_again_once_its_request_is_closed(self) -> None:
        for state in (State.DRAFT, State.WITHDRAWN, State.DENIED):
            self.make_request(self.acme, "203.0.113.10", state=state)
        r = self.post_api()
        self.assertEqual(r.status_code, 201, r.content)

    def test_it_refuses_an_address_already_covered_by_an_exemption(self) -> None:
        exemption = Exemption(tenant=self.acme)
        exemption.set_network(ipaddress.ip_network("203.0.113.8/29"))
        exemption.save()
        self.assertRefused(
            "addresses",
            "203.0.113.10 is already covered by your active exemption for 203.0.113.8/29; "
            "no new request is needed.",
        )


class LiveValidationTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.client.force_login(self.alice)

    def validate(self, field: str, **overrides: Any) -> Any:
        return self.client.post(
            "/requests/new/",
            {"tenant": self.acme.pk, **form_data("submit", **overrides)},
            headers={"HX-Request": "true", "HX-Trigger-Name": field},
        )

    def test_it_answers_with_the_feedback_of_one_field(self) -> None:
        r = self.validate("addresses", addresses=["203.0.113.9/29"])
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, 'id="feedback-addresses"')
        self.assertContains(r, "the block containing it is 203.0.113.8/29")
        self.assertNotContains(r, "<form")
        self.assertNotContains(r, "<html")
        self.assertNotContains(r, 'id="feedback-justification"')
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_shows_no_error_for_a_good_address(self) -> None:
        r = self.validate("addresses", addresses=["203.0.113.10"])
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, 'id="feedback-addresses"')
        self.assertNotContains(r, "errorlist")
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_never_saves_from_live_validation(self) -> None:
        r = self.validate("accept_aup", addresses=["203.0.113.10"])
        self.assertContains(r, 'id="feedback-accept_aup"')
        r = self.validate("bogus", addresses=["203.0.113.10"])
        self.assertEqual(r.status_code, 400)
        self.assertEqual(UnblockRequest.objects.count(), 0)

    def test_it_validates_other_fields_the_same_way(self) -> None:
        r = self.validate("abuse_contact", abuse_contact="nope")
        self.assertContains(r, 'id="feedback-abuse_contact"')
        self.assertContains(
            r, "Enter an email address where abuse reports reach you, e.g. abuse@example.com."
        )
        self.assertNotContains(r, 'id="feedback-addresses"')
