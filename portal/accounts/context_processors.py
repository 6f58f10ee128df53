from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from portal.accounts.models import roles_of


def branding(request: HttpRequest) -> dict[str, object]:
    return {
        "site_name": settings.SITE_NAME,
        "acceptable_use_url": settings.ACCEPTABLE_USE_URL,
        "staff_roles": roles_of(request.user) if hasattr(request, "user") else set(),
    }
