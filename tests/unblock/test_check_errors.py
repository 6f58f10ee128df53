"""A check that got no usable answer (resolver down, Spamhaus refusing a public resolver) is our
problem, not the customer's: customers are told a reviewer will check, staff get the fix."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from portal.vetting.models import CheckResult, RunReason, RunState, VettingRun
from tests.base import PortalTestCase

OPERATOR_ADVICE = "point DNS_NAMESERVERS at your own recursive resolver"


class CheckErrorTestCase(PortalTestCase):
    def setUp(self) -> None:
        self.req = self.make_request()
        run = VettingRun.objects.create(
            request=self.req,
            reason=RunReason.SUBMITTED,
            requested_by="system",
            state=RunState.DONE,
            finished_at=timezone.now(),
        )
        # What dnsbl.check_address stores for Spamhaus's "public resolver" error code.
        CheckResult.objects.create(
            run=run,
            check_name="dnsbl",
            subject="203.0.113.5",
            outcome="error",
            summary="zen.spamhaus.org: 127.255.255.254: the query came through a public/open resolver, "
            f"which Spamhaus refuses; {OPERATOR_ADVICE} or use a DQS key; listing status unknown",
            score=5,
        )

    def test_it_tells_the_customer_a_reviewer_will_check(self) -> None:
        self.client.force_login(self.alice)
        r = self.client.get(reverse("unblock:detail", args=[self.req.id]))
        self.assertContains(r, "We could not check this; a reviewer will.")
        self.assertNotContains(r, "DNS_NAMESERVERS")
        self.assertNotContains(r, "127.255.255.254")

    def test_it_tells_the_api_customer_a_reviewer_will_check(self) -> None:
        r = self.api().get(f"/api/v1/requests/{self.req.id}")
        [check] = r.json()["checks"]
        self.assertEqual(check["outcome"], "error")
        self.assertEqual(check["summary"], "We could not check this; a reviewer will.")
        self.assertEqual(check["fix"], "")
        self.assertNotIn("DNS_NAMESERVERS", r.content.decode())

    def test_it_gives_staff_the_operator_hint(self) -> None:
        self.client.force_login(self.rita)
        r = self.client.get(reverse("staff:request", args=[self.req.id]))
        self.assertContains(r, "127.255.255.254")
        self.assertContains(
            r, "Point DNS_NAMESERVERS at your own recursive resolver or use a DQS key (SPAMHAUS_DQS_KEY)"
        )
        self.assertNotContains(r, "We could not check this")
