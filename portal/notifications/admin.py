from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.notifications.models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin[OutboundEmail]):
    list_display = ["created_at", "subject", "state", "attempts", "sent_at"]
    list_filter = ["state"]
    readonly_fields = [
        "to",
        "subject",
        "body",
        "state",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "created_at",
        "sent_at",
        "last_error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
