from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "portal.enforcement"
    label = "enforcement"
