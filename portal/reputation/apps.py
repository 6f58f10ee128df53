from django.apps import AppConfig


class ReputationConfig(AppConfig):
    name = "portal.reputation"
    label = "reputation"
    verbose_name = "Reputation history"
