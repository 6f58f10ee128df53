from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.unblock.models import Message, RequestedBlock, UnblockRequest


class RequestedBlockInline(admin.TabularInline[RequestedBlock, UnblockRequest]):
    model = RequestedBlock
    fields = ["cidr"]
    readonly_fields = ["cidr"]
    extra = 0
    can_delete = False


class MessageInline(admin.TabularInline[Message, UnblockRequest]):
    model = Message
    fields = ["created_at", "author_label", "kind", "internal", "body"]
    readonly_fields = ["created_at", "author_label", "kind", "internal", "body"]
    extra = 0
    can_delete = False


@admin.register(UnblockRequest)
class UnblockRequestAdmin(admin.ModelAdmin[UnblockRequest]):
    list_display = ["reference", "tenant", "state", "use_case", "submitted_at", "state_changed_at"]
    list_filter = ["state", "use_case"]
    search_fields = ["id", "tenant__name", "tenant__external_id", "blocks__cidr"]
    inlines = [RequestedBlockInline, MessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UnblockRequest | None = None) -> bool:
        # State changes go through the workflow (audited, notified), never through raw edits.
        return False
