from __future__ import annotations

import subprocess
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.accounts.management.commands.seed_demo import DEMO_PASSWORD, STAFF, TENANTS


class Command(BaseCommand):
    help = "Serve the portal and run its worker in one foreground process (Ctrl-C stops both)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        url = f"http://{options['addr']}:{options['port']}/"
        logins = [(email, f"customer of {spec.name}") for spec in TENANTS for email in spec.members]
        logins += [(email, " + ".join(roles)) for email, roles in STAFF]
        width = max(len(email) for email, _ in logins)
        self.stdout.write(self.style.SUCCESS(f"\nThe portal is at {url}\n"))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, what in logins:
            self.stdout.write(f"  {email:<{width}}  {what}")
        self.stdout.write("\nPress Ctrl-C to stop the web server and the worker.\n")
        worker = subprocess.Popen([sys.executable, "manage.py", "runworker"])
        try:
            call_command("runserver", f"{options['addr']}:{options['port']}", use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
