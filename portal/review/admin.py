from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.review.models import Approval, DenialReason


@admin.register(DenialReason)
class DenialReasonAdmin(admin.ModelAdmin[DenialReason]):
    list_display = ["title", "active", "position"]
    list_editable = ["active", "position"]


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin[Approval]):
    list_display = ["request", "approver", "at", "final"]
    readonly_fields = ["request", "approver", "at", "cidrs", "expires_at", "note", "final"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False
