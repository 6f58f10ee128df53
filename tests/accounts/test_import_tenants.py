"""manage.py import_tenants FILE: bulk provisioning from JSON lines, each line all-or-nothing."""

from __future__ import annotations

import json
import tempfile
from io import StringIO
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from portal.accounts.models import Allocation, Tenant
from portal.notifications.models import OutboundEmail
from tests.base import PortalTestCase


def line(external_id: str, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "external_id": external_id,
        "name": f"Tenant {external_id}",
        "account_opened_on": "2024-01-31",
        "allocations": [],
        "members": [],
    }
    body.update(overrides)
    return json.dumps(body)


class ImportTenantsTestCase(PortalTestCase):
    def run_import(self, *lines: str) -> tuple[str, str, CommandError | None]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tenants.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            out, err = StringIO(), StringIO()
            try:
                call_command("import_tenants", str(path), stdout=out, stderr=err)
            except CommandError as exc:
                return out.getvalue(), err.getvalue(), exc
        return out.getvalue(), err.getvalue(), None

    def test_it_imports_every_good_line(self) -> None:
        out, err, failure = self.run_import(
            line("t-1", allocations=["192.0.2.128/25"], members=["one@t1.example"]),
            "",
            line(
                "acme-1", name="Acme Renamed", account_opened_on="2025-01-01", allocations=["203.0.113.0/26"]
            ),
        )
        self.assertIsNone(failure)
        self.assertEqual(err, "")
        self.assertEqual(out.strip(), "1 created, 1 updated, 0 failed")
        t1 = Tenant.objects.get(external_id="t-1")
        self.assertEqual([a.cidr for a in t1.allocations.all()], ["192.0.2.128/25"])
        self.assertEqual(OutboundEmail.objects.get().to, ["one@t1.example"])
        self.assertEqual(Tenant.objects.get(external_id="acme-1").name, "Acme Renamed")

    def test_it_can_run_again_without_changing_anything(self) -> None:
        self.run_import(line("t-1", allocations=["192.0.2.128/25"], members=["one@t1.example"]))
        out, _, failure = self.run_import(
            line("t-1", allocations=["192.0.2.128/25"], members=["one@t1.example"])
        )
        self.assertIsNone(failure)
        self.assertEqual(out.strip(), "0 created, 1 updated, 0 failed")
        self.assertEqual(Allocation.objects.filter(tenant__external_id="t-1").count(), 1)
        self.assertEqual(OutboundEmail.objects.count(), 1)

    def test_it_reports_bad_lines_by_number_and_saves_nothing_of_them(self) -> None:
        out, err, failure = self.run_import(
            line("t-1"),
            '{"external_id": "t-2", "name": ',
            '["not", "an", "object"]',
            line("t-4", account_opened_on="31/01/2024", members=["m@t4.example"]),
            line("t-5", allocations=["198.51.100.64/28"], members=["m@t5.example"]),
            line("t-6", allocations=["203.0.113.9/29"]),
            line("t 7!"),
            line("t-8"),
        )
        self.assertIsNotNone(failure)
        self.assertEqual(
            str(failure), "Some lines were not imported; each line is all-or-nothing, fix them and re-run."
        )
        self.assertEqual(out.strip(), "2 created, 0 updated, 6 failed")
        problems = err.strip().splitlines()
        self.assertEqual(
            [p.split(":")[0] for p in problems], ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7"]
        )
        self.assertTrue(
            problems[0].startswith("line 2: not valid JSON (Expecting value at column 32)"), problems[0]
        )
        self.assertEqual(problems[1], 'line 3: each line must be a JSON object with an "external_id" string')
        self.assertIn("account_opened_on", problems[2])
        self.assertIn(
            "198.51.100.64/28 overlaps 198.51.100.64/27, which is allocated to tenant globex-2", problems[3]
        )
        self.assertIn("the block containing it is 203.0.113.8/29", problems[4])
        self.assertEqual(
            problems[5],
            "line 7: external_id: use 1 to 100 letters, digits or . _ : @ - for the tenant's external id.",
        )
        self.assertEqual(
            sorted(Tenant.objects.filter(external_id__startswith="t-").values_list("external_id", flat=True)),
            ["t-1", "t-8"],
        )
        self.assertFalse(User.objects.filter(email__in=["m@t4.example", "m@t5.example"]).exists())
        self.assertEqual(OutboundEmail.objects.count(), 0)

    def test_it_explains_a_missing_file(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "Can't read /nonexistent/tenants.jsonl: No such file or directory"
        ):
            call_command("import_tenants", "/nonexistent/tenants.jsonl")

    def test_it_names_the_line_and_byte_that_is_not_utf8_and_imports_the_rest(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tenants.jsonl"
            latin1 = line("t-2", name="Cafe Muller").encode().replace(b"Cafe", b"Caf\xe9")
            path.write_bytes(b"\n".join([line("t-1").encode(), latin1, line("t-3").encode()]) + b"\n")
            out, err = StringIO(), StringIO()
            with self.assertRaises(CommandError):
                call_command("import_tenants", str(path), stdout=out, stderr=err)
        column = latin1.index(b"\xe9") + 1
        self.assertEqual(
            err.getvalue().strip(),
            f"line 2: not UTF-8 (byte 0xe9 at byte {column} of the line); save the file as UTF-8",
        )
        self.assertEqual(out.getvalue().strip(), "2 created, 0 updated, 1 failed")
        self.assertEqual(
            sorted(Tenant.objects.filter(external_id__startswith="t-").values_list("external_id", flat=True)),
            ["t-1", "t-3"],
        )
