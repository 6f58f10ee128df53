"""The latest vetting state of a request, as the customer's and the reviewer's pages show it."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.unblock.models import UnblockRequest
from portal.vetting.findings import OUTCOME_ORDER
from portal.vetting.models import CheckResult, RunState, VettingRun


@dataclass
class VettingSummary:
    latest: VettingRun | None
    in_progress: bool
    results: list[CheckResult] = field(default_factory=list)

    @property
    def problems(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("warn", "fail", "error")]

    @property
    def passed(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in ("pass", "info")]

    @property
    def passed_count(self) -> int:
        return len(self.passed)


def summarize(req: UnblockRequest, *, for_staff: bool) -> VettingSummary:
    runs = list(req.vetting_runs.order_by("-created_at")[:5])
    latest = next((r for r in runs if r.state == RunState.DONE), None)
    in_progress = any(r.state in (RunState.PENDING, RunState.RUNNING) for r in runs)
    results: list[CheckResult] = []
    if latest is not None:
        queryset = latest.results.all() if for_staff else latest.results.visible_to_customer()
        results = sorted(queryset, key=lambda r: (-OUTCOME_ORDER.get(r.outcome, 0), r.check_name, r.subject))
    return VettingSummary(latest, in_progress, results)
