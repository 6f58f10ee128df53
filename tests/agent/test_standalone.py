"""The agent runs on a gateway without Django, the database or anything from PyPI."""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.test import SimpleTestCase

from portal.agent.config import FAIL_CLOSED, Address, ConfigError, parse

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "portal" / "agent"
KEY = "eep_0123456789ab" + "x" * 43


def python_without_site_packages(*args: str) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages at all, so only the standard library and this checkout can be imported.
    return subprocess.run(
        [sys.executable, "-S", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""


class StandaloneTestCase(SimpleTestCase):
    def test_it_imports_with_the_standard_library_alone_and_never_loads_django(self) -> None:
        modules = sorted(f"portal.agent.{p.stem}" for p in AGENT.glob("*.py") if p.stem != "__main__")
        code = (
            f"import sys\nfor name in {modules!r}: __import__(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'rest_framework', 'psycopg'}))"
        )
        done = python_without_site_packages("-c", code)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "[]")

    def test_no_module_imports_anything_but_the_standard_library_and_itself(self) -> None:
        for path in AGENT.glob("*.py"):
            for name in imported_modules(path):
                with self.subTest(module=path.name, imports=name):
                    top = name.split(".")[0]
                    self.assertTrue(top in sys.stdlib_module_names or name.startswith("portal.agent"))

    def test_it_explains_a_missing_key_and_exits_2(self) -> None:
        done = python_without_site_packages(
            "-m", "portal.agent", "--portal-url", "https://portal.example.net"
        )
        self.assertEqual(done.returncode, 2)
        self.assertIn("No API key: give --key-file (or EEP_AGENT_KEY) with an enforcement key.", done.stderr)


class ConfigurationTestCase(SimpleTestCase):
    def test_a_flag_wins_over_its_variable_which_wins_over_the_default(self) -> None:
        environ = {
            "EEP_AGENT_PORTAL_URL": "https://portal.example.net/",
            "EEP_AGENT_KEY": KEY,
            "EEP_AGENT_POLL_SECONDS": "30",
            "EEP_AGENT_TABLE": "from_env",
        }
        config = parse(["--table", "from_flag", "--fail-mode", "fail-closed"], environ)
        self.assertEqual(config.portal_url, "https://portal.example.net")
        self.assertEqual((config.key, config.poll_seconds, config.names.table), (KEY, 30.0, "from_flag"))
        self.assertEqual(
            (config.names.set4, config.names.set6, config.fail_mode), ("exempt4", "exempt6", FAIL_CLOSED)
        )
        self.assertEqual(config.stale_seconds, 120.0)
        self.assertEqual((config.health_listen, config.webhook_listen), (Address("127.0.0.1", 9125), None))

    def test_it_reads_the_key_and_the_webhook_secrets_from_files(self) -> None:
        directory = Path(self.enterContext(tempfile.TemporaryDirectory()))
        (directory / "key").write_text(KEY + "\n")
        (directory / "secrets").write_text("whsec_bmV3\nwhsec_b2xk\n")
        config = parse(
            [
                "--portal-url", "https://portal.example.net",
                "--key-file", str(directory / "key"),
                "--webhook-listen", "[::]:9126",
                "--webhook-secret-file", str(directory / "secrets"),
            ],
            {},
        )  # fmt: skip
        self.assertEqual(config.key, KEY)
        self.assertEqual(config.webhook_secrets, ("whsec_bmV3", "whsec_b2xk"))
        self.assertEqual(config.webhook_listen, Address("::", 9126))

    def test_it_refuses_what_it_can_not_run_with(self) -> None:
        base = {"EEP_AGENT_PORTAL_URL": "https://portal.example.net", "EEP_AGENT_KEY": KEY}
        cases = {
            "the portal URL": (
                ["--portal-url", "ftp://portal"],
                "--portal-url must be the portal's http(s) URL",
            ),
            "the fail mode": (["--fail-mode", "fail-open"], "--fail-mode is fail-static or fail-closed"),
            "a table name": (["--table", "a b"], "The table name 'a b' won't do"),
            "the poll interval": (["--poll-seconds", "often"], "--poll-seconds must be a number of seconds"),
            "webhooks without a secret": (
                ["--webhook-listen", ":9126"],
                "--webhook-listen needs the endpoint's secret",
            ),
            "a listen address": (["--health-listen", "localhost"], "--health-listen must be host:port"),
            "a key file": (
                ["--key-file", "/nonexistent/key"],
                "Can't read the API key from /nonexistent/key",
            ),
        }
        for case, (argv, message) in cases.items():
            with self.subTest(case):
                with self.assertRaises(ConfigError) as caught:
                    parse(argv, base)
                self.assertIn(message, str(caught.exception))
        with self.assertRaises(ConfigError):
            parse(
                [], {**base, "EEP_AGENT_WEBHOOK_SECRET": "not-a-whsec", "EEP_AGENT_WEBHOOK_LISTEN": ":9126"}
            )
