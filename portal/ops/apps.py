from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The worker, health and metrics endpoints, and the API's error mapping: the top floor."""

    name = "portal.ops"
    label = "ops"
