from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def branding(request: HttpRequest) -> dict[str, str]:
    return {"site_name": settings.SITE_NAME, "acceptable_use_url": settings.ACCEPTABLE_USE_URL}
