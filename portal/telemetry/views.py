"""The staff page of telemetry agents: who reports, how recently, and who went silent."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal.accounts.access import staff_required
from portal.telemetry.models import Agent


@staff_required
def agent_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    agents = list(Agent.objects.select_related("api_key"))
    rows = [{"agent": a, "lag": a.lag_seconds(now), "stale": a.is_stale} for a in agents]
    return render(
        request,
        "review/agents.html",
        {
            "rows": rows,
            "stale_count": sum(1 for r in rows if r["stale"]),
            "stale_seconds": settings.AGENT_STALE_SECONDS,
        },
    )
