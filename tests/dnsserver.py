"""The test DNS server lives in portal/lib/dnsserver.py (make demo uses it too)."""

from portal.lib.dnsserver import Zone, answer, running, serve

__all__ = ["Zone", "answer", "running", "serve"]
