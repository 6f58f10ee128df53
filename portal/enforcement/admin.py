from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.enforcement.models import Exemption


@admin.register(Exemption)
class ExemptionAdmin(admin.ModelAdmin[Exemption]):
    list_display = ["cidr", "tenant", "state", "expires_at", "created_at"]
    list_filter = ["state", "family"]
    search_fields = ["cidr", "tenant__name", "tenant__external_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Exemption | None = None) -> bool:
        return False
