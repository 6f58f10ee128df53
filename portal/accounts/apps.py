from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    verbose_name = "Tenants, people and API keys"

    def ready(self) -> None:
        from portal.accounts import schema  # noqa: F401 - registers the OpenAPI auth scheme
