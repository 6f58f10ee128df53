"""manage.py import_dnsbl_zone --zone zen.spamhaus.org [--format ip4set] FILE"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.lib.zonefile import Dataset
from portal.workflows.zone_import import FORMATS, ZoneImportError, dataset_of, import_zone_file


class Command(BaseCommand):
    help = "Import a DNSBL zone file (rbldnsd dataset) and record listing transitions of allocated addresses."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--zone", required=True, help="The zone's name, as statuses and events show it.")
        parser.add_argument(
            "--format", dest="dataset", help=f"{FORMATS}; by default the file's suffix, else ip4set"
        )
        parser.add_argument(
            "--allow-empty", action="store_true", help="Accept a file that lists nothing (delists everyone)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        zone = options["zone"].strip().rstrip(".")
        if not zone:
            raise CommandError("--zone needs a zone name, e.g. zen.spamhaus.org")
        try:
            dataset = dataset_of(options["dataset"] or _suffix_format(path))
            started = time.perf_counter()
            result = import_zone_file(
                zone=zone, path=path, dataset=dataset, allow_empty=options["allow_empty"]
            )
        except ZoneImportError as exc:
            raise CommandError(f"{path}: {exc}. Nothing was changed.") from None
        for error in result.line_errors[:10]:
            self.stderr.write(f"{path}: skipped {error}")
        if result.bad_lines > 10:
            self.stderr.write(f"{path}: … {result.bad_lines - 10} more lines skipped")
        self.stdout.write(
            f"{zone}: {result.entries:,} lines ({result.bad_lines} skipped), "
            f"{result.listed_addresses:,} allocated IPv4 addresses listed, {result.transitions:,} "
            f"changes, {result.events:,} events ({result.method}, {time.perf_counter() - started:.1f} s)"
        )


def _suffix_format(path: Path) -> str:
    suffix = path.suffix.lstrip(".")
    return suffix if suffix in set(Dataset) else Dataset.IP4SET.value
