from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data and a demo DNS server for `make demo`; installed only when DEBUG is on."""

    name = "portal.demo"
    label = "demo"
