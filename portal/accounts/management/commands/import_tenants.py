"""Bulk load tenants from JSON lines, each line the body of PUT /api/v1/tenants/{external_id}
plus its "external_id"."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.accounts.api import EXTERNAL_ID
from portal.accounts.models import Actor
from portal.accounts.serializers import TenantSpecSerializer
from portal.workflows.provisioning import provision_tenant


class Command(BaseCommand):
    help = "Create or update tenants from a JSON-lines file ('-' reads standard input)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            # Bytes, decoded line by line: a line that is not UTF-8 is reported like any other bad
            # line instead of ending the whole import with a traceback.
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Can't read {path}: {exc.strerror}") from None
        actor = Actor.of_system("manage.py import_tenants")
        counts = {"created": 0, "updated": 0, "failed": 0}
        with stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    counts["failed"] += 1
                    self.stderr.write(
                        f"line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} "
                        "of the line); save the file as UTF-8"
                    )
                    continue
                if not line.strip():
                    continue
                problem = self._import_line(line, actor, counts)
                if problem:
                    counts["failed"] += 1
                    self.stderr.write(f"line {number}: {problem}")
        self.stdout.write(
            f"{counts['created']} created, {counts['updated']} updated, {counts['failed']} failed"
        )
        if counts["failed"]:
            raise CommandError(
                "Some lines were not imported; each line is all-or-nothing, fix them and re-run."
            )

    def _import_line(self, line: str, actor: Actor, counts: dict[str, int]) -> str:
        try:
            # Without its line break, so that an error at the end of the line names its column.
            data = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            return f"not valid JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(data, dict) or not isinstance(data.get("external_id"), str):
            return 'each line must be a JSON object with an "external_id" string'
        if not EXTERNAL_ID.match(data["external_id"]):
            # The same rule as the API's, or the API could not address the tenant afterwards.
            return "external_id: use 1 to 100 letters, digits or . _ : @ - for the tenant's external id."
        serializer = TenantSpecSerializer(data=data)
        if not serializer.is_valid():
            return json.dumps(serializer.errors)
        try:
            result = provision_tenant(spec=serializer.to_spec(data["external_id"]), actor=actor)
        except ValidationError as exc:
            return "; ".join(exc.messages)
        counts["created" if result.created else "updated"] += 1
        return ""
