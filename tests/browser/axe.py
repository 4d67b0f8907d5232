"""axe-core (bundled by axe-playwright-python) run in a page, under the page's own
Content-Security-Policy: the script goes in through page.evaluate (a DevTools-protocol
evaluation, which the CSP does not govern), never through a <script> tag or bypass_csp.

`serious_violations(page)` runs axe's default rule set (WCAG 2 A/AA and best practices)
and keeps the serious and critical violations, each with its nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from axe_playwright_python.base import AXE_SCRIPT

BLOCKING = ("serious", "critical")


@dataclass
class Violation:
    rule: str
    impact: str
    help: str
    nodes: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"{self.rule} ({self.impact}, {len(self.nodes)} node(s)): {self.help}"]
        for node in self.nodes[:8]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {target}: {summary[:300]}")
        if len(self.nodes) > 8:
            lines.append(f"    ... and {len(self.nodes) - 8} more")
        return "\n".join(lines)


def serious_violations(page) -> list[Violation]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        Violation(v["id"], v["impact"], v["help"], v["nodes"])
        for v in results["violations"]
        if v.get("impact") in BLOCKING
    ]


def report(violations: list[Violation]) -> str:
    return "\n".join(v.describe() for v in violations)
