from django.apps import AppConfig


class UnblockConfig(AppConfig):
    name = "portal.unblock"
    label = "unblock"
    verbose_name = "Unblock requests"
