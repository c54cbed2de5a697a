"""Accessibility checks: axe-core on a page the browser tests reached, failing on any WCAG 2
A/AA violation.

axe-core comes from npm, pinned in package-lock.json (`make test` runs `npm ci`), and is read
from node_modules/. It is evaluated through the DevTools protocol, which the page's
Content-Security-Policy (script-src 'self') does not govern: neither the product's policy
nor the test's browser context is relaxed, so the journeys still run under the real policy.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conftest import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

# The violations as plain data: what a reader needs to find and fix each one.
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.map(String), summary: n.failureSummary})),
  }));
}"""


@cache
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: `make test` installs it (npm ci)")
    return AXE.read_text()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(axe_source())
    return page.evaluate(RUN_AXE, list(WCAG_TAGS))


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    {' >> '.join(node['target'])}")
            lines += [f"      {line}" for line in (node["summary"] or "").splitlines()]
    return "\n".join(lines)


def assert_accessible(page: Page, name: str) -> None:
    """Fail the test if axe-core finds any WCAG 2 A/AA violation on the page."""
    violations = axe_violations(page)
    if violations:
        pytest.fail(
            f"{name} ({page.url}): {len(violations)} WCAG 2 A/AA violation(s)\n"
            + describe(violations),
            pytrace=False,
        )
