from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.db import connection
from django.test import SimpleTestCase

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


class OpenApiDocumentTestCase(SimpleTestCase):
    def test_docs_openapi_yaml_matches_the_code(self) -> None:
        if connection.vendor != "sqlite":
            # Integer bounds in the document follow the database backend; `make schema` (and so
            # the committed document) uses the SQLite default, and the SQLite run checks it.
            self.skipTest("docs/openapi.yaml is generated and checked on the SQLite default")
        out = StringIO()
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
        self.assertEqual(
            out.getvalue().strip(),
            DOCUMENT.read_text().strip(),
            "docs/openapi.yaml is out of date: run `make schema` and commit it.",
        )
