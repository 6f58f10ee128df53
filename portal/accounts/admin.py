from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.accounts.models import Allocation, ApiKey, Membership, Tenant


class AllocationInline(admin.TabularInline[Allocation, Tenant]):
    model = Allocation
    extra = 0
    fields = ["cidr", "assigned_at", "released_at"]
    readonly_fields = ["cidr", "assigned_at", "released_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        # Allocations come from provisioning (API or import), which checks overlaps and history.
        return False


class MembershipInline(admin.TabularInline[Membership, Tenant]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = [
        "name",
        "external_id",
        "billing_standing",
        "identity_verified",
        "paid_invoices",
        "account_opened_on",
    ]
    list_filter = ["billing_standing", "identity_verified"]
    search_fields = ["name", "external_id", "abuse_contact"]
    inlines = [AllocationInline, MembershipInline]


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin[Allocation]):
    list_display = ["cidr", "tenant", "assigned_at", "released_at"]
    list_filter = ["family", "released_at"]
    search_fields = ["cidr", "tenant__name", "tenant__external_id"]
    readonly_fields = ["cidr", "tenant", "assigned_at", "released_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["name", "scope", "tenant", "display_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", "revoked_at"]
    search_fields = ["name", "lookup", "tenant__name"]
    readonly_fields = [
        "name",
        "scope",
        "tenant",
        "lookup",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["digest"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys are shown once at creation; create them in the UI or with manage.py create_api_key.
        return False
