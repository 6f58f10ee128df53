"""axe-core (vendored from npm, MPL-2.0) run in the page under test: every violation fails.

The script goes in through the DevTools protocol, which the page's CSP doesn't govern, so the
page keeps exactly the policy it has in production.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.10.3.min.js"

RUN = """async () => {
  const result = await axe.run(document);
  const where = (v) => v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ");
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${where(v)}`);
}"""


def axe_violations(page: Page) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;true")
    violations: list[str] = page.evaluate(RUN)
    return violations
