"""Whether each listing source can see: `source_health()` feeds /healthz, /metrics and the banner
of the network reputation page, so all three say the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.reputation.models import ListingSource, SourceKind


@dataclass(frozen=True)
class SourceHealth:
    source: ListingSource
    stale: bool
    failing: bool
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def age_seconds(self) -> float | None:
        finished = self.source.last_pass_finished_at
        return (timezone.now() - finished).total_seconds() if finished else None


def check(source: ListingSource, now: datetime | None = None) -> SourceHealth:
    now = now or timezone.now()
    problems = []
    window = timedelta(seconds=2 * source.interval_seconds)
    finished = source.last_pass_finished_at
    stale = (finished or source.created_at) < now - window
    if stale:
        since = f"since {finished:%Y-%m-%d %H:%M} UTC" if finished else "ever"
        problems.append(f"no complete pass {since} (expected every {_span(source.interval_seconds)})")
    if source.kind == SourceKind.ZONE_FILE and source.file_mtime:
        max_age = timedelta(hours=settings.DNSBL_ZONE_MAX_AGE_HOURS)
        if source.file_mtime < now - max_age:
            stale = True
            problems.append(
                f"the zone file was last changed {source.file_mtime:%Y-%m-%d %H:%M} UTC, more than "
                f"{settings.DNSBL_ZONE_MAX_AGE_HOURS} h ago: is the feed still syncing?"
            )
    share = settings.DNSBL_SOURCE_MAX_ERROR_SHARE
    # DNS: look-ups that got no usable answer; zone file: lines that could not be read.
    whole = source.file_entries if source.kind == SourceKind.ZONE_FILE else source.addresses_checked
    # The pass under way counts too: a resolver that is down never completes a pass.
    errors = max(source.errors_last_pass, source.pass_errors)
    failing = bool(source.last_error) or errors > share * max(whole, 1)
    if source.last_error:
        problems.append(source.last_error)
    elif failing:
        problems.append(
            f"{errors} errors in a pass (more than {share:.0%}): what they concern was not checked"
        )
    return SourceHealth(source, stale, failing, problems)


def source_health() -> list[SourceHealth]:
    """Every listing source, with what is wrong with it (empty when it sees)."""
    now = timezone.now()
    return [check(source, now) for source in ListingSource.objects.all()]


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds // 60} min"
