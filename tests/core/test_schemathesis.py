"""Schemathesis against a live portal, one run per API key scope: the OpenAPI document in
docs/openapi.yaml is what the API does (no server error, every status, content type, header and
body as documented, and bodies of the wrong type refused)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.test import LiveServerTestCase

from portal.accounts.models import Allocation, ApiKey, Membership, Scope, Tenant

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)
# Each scope's operations; the others only answer its key with 403, which the runs of the
# scopes that own them already cover.
PATHS = {
    Scope.CUSTOMER: "^/api/v1/requests/",
    Scope.REVIEWER: "^/api/v1/review/",
    Scope.ENFORCEMENT: "^/api/v1/feeds/",
    Scope.PROVISIONING: "^/api/v1/(tenants|reputation|webhooks)/",
}
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))


class SchemathesisTestCase(LiveServerTestCase):
    def setUp(self) -> None:
        acme = Tenant.objects.create(
            external_id="acme-1", name="Acme Ltd", account_opened_on=date(2025, 1, 1), identity_verified=True
        )
        allocation = Allocation(tenant=acme)
        allocation.set_network(ipaddress.ip_network("203.0.113.0/26"))
        allocation.save()
        alice = User.objects.create_user("alice@acme.example", "alice@acme.example")
        Membership.objects.create(user=alice, tenant=acme)
        rita = User.objects.create_user("rita@provider.example", "rita@provider.example")
        rita.groups.add(Group.objects.get_or_create(name="reviewer")[0])
        self.keys = {
            Scope.CUSTOMER: ApiKey.issue(name="st", scope=Scope.CUSTOMER, tenant=acme, created_by=alice)[1],
            Scope.REVIEWER: ApiKey.issue(name="st", scope=Scope.REVIEWER, tenant=None, created_by=rita)[1],
            Scope.ENFORCEMENT: ApiKey.issue(name="st", scope=Scope.ENFORCEMENT, tenant=None, created_by=None)[
                1
            ],
            Scope.PROVISIONING: ApiKey.issue(
                name="st", scope=Scope.PROVISIONING, tenant=None, created_by=None
            )[1],
        }

    def test_it_matches_its_openapi_document_for_every_key_scope(self) -> None:
        if not SCHEMATHESIS.exists():
            self.skipTest("schemathesis is not installed (pip install -r requirements-dev.txt)")
        for scope, paths in PATHS.items():
            with self.subTest(scope=scope):
                run = subprocess.run(
                    [
                        str(SCHEMATHESIS),
                        "run",
                        str(ROOT / "docs" / "openapi.yaml"),
                        "--url",
                        self.live_server_url,
                        "--header",
                        f"Authorization: Bearer {self.keys[scope]}",
                        "--include-path-regex",
                        paths,
                        "--exclude-path-regex",
                        "/arf$",
                        "--checks",
                        CHECKS,
                        "--phases",
                        "examples,coverage,fuzzing",
                        "--max-examples",
                        str(EXAMPLES),
                        "--workers",
                        "1",
                        "--seed",
                        "25",
                        "--generation-deterministic",
                        "--request-timeout",
                        "20",
                        "--no-color",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    cwd=ROOT,
                    check=False,
                )
                self.assertEqual(run.returncode, 0, run.stdout[-6000:] + run.stderr[-2000:])
