from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.demo import sso
from portal.demo.dnsserver import running
from portal.demo.management.commands.seed_demo import DEMO_PASSWORD, STAFF, TENANTS
from portal.demo.zone import DBL_ZONE, DNSBL_ZONE, demo_zone


class Command(BaseCommand):
    help = (
        "Serve the portal, its worker and a demo DNS server in one foreground process "
        "(Ctrl-C stops them all)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        url = f"http://{options['addr']}:{options['port']}/"
        logins = [(email, f"customer of {spec.name}") for spec in TENANTS for email in spec.members]
        logins += [(email, " + ".join(roles)) for email, roles in STAFF]
        width = max(len(email) for email, _ in logins)
        with running(demo_zone()) as dns_port, sso.running(sso.people(TENANTS, STAFF)) as issuer:
            # The checks ask the demo DNS server, so that they show real outcomes offline.
            dns = {
                "DNS_NAMESERVERS": "127.0.0.1",
                "DNS_PORT": str(dns_port),
                "DNSBL_ZONE": DNSBL_ZONE,
                "DBL_ZONE": DBL_ZONE,
            }
            settings.DNS_NAMESERVERS, settings.DNS_PORT = ["127.0.0.1"], dns_port
            settings.DNSBL_ZONE, settings.DBL_ZONE = DNSBL_ZONE, DBL_ZONE
            self.stdout.write(self.style.SUCCESS(f"\nThe portal is at {url}\n"))
            self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
            for email, what in logins:
                self.stdout.write(f"  {email:<{width}}  {what}")
            self.stdout.write(
                f"\nDemo DNS on 127.0.0.1:{dns_port} (zones {DNSBL_ZONE}, {DBL_ZONE}); try 203.0.113.40 "
                "(listed on CSS) or 203.0.113.25 (clean) as Acme's customer."
            )
            if issuer is not None:
                # The web server runs in this process: the settings it reads are these.
                settings.SSO_CUSTOMERS, settings.SSO_STAFF = sso.settings_for(issuer)
                self.stdout.write(
                    f'Demo SSO on {issuer}: choose "Sign in with Demo SSO" and enter one of the emails '
                    "above as the subject (no password)."
                )
            else:
                self.stdout.write("Demo SSO is off: install requirements-dev.txt to get oidc-provider-mock.")
            self.stdout.write("Press Ctrl-C to stop the web server and the worker.\n")
            worker = subprocess.Popen([sys.executable, "manage.py", "runworker"], env={**os.environ, **dns})
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
