"""axe-core in the browser tests: inject the npm package's ``axe.min.js`` into a Playwright page, run it, and list
the serious and critical violations.

axe-core is a devDependency of ``annotation/frontend`` (CI runs ``npm ci`` there before pytest), so the tests use
the exact version the lock file pins and never fetch it from the internet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parents[1] / "annotation" / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_script() -> Path:
    """The path of axe.min.js; a failure that says how to install it when it is missing."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` in annotation/frontend (axe-core is one of its devDependencies)")
    return AXE


def violations(page: Any, exclude: list[str] | None = None, skip: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules and best
    practices); ``exclude``: CSS selectors of regions not checked; ``skip``: rule ids not run."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not added as a <script>: the site's CSP refuses inline scripts.
        page.evaluate(f"() => {{ {axe_script().read_text()}\n}}")
    context: dict[str, Any] = {"include": [["html"]], "exclude": [[s] for s in exclude or []]}
    rules = {rule: {"enabled": False} for rule in skip or []}
    result = page.evaluate(
        "([context, rules]) => axe.run(context, { resultTypes: ['violations'], rules })",
        [context, rules],
    )
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def describe(found: list[dict[str, Any]], limit: int = 4) -> str:
    """One line per violation: rule, impact, what it means, and the first few offending elements."""
    lines = []
    for v in found:
        targets = ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:limit])
        more = f" (+{len(v['nodes']) - limit} more)" if len(v["nodes"]) > limit else ""
        lines.append(f"  {v['id']} [{v['impact']}] {v['help']}: {targets}{more}")
    return "\n".join(lines)


def assert_accessible(page: Any, name: str, exclude: list[str] | None = None, skip: list[str] | None = None) -> None:
    """Fail, listing them, when axe-core finds a serious or critical violation on the page."""
    found = violations(page, exclude, skip)
    assert not found, f"axe-core on {name} ({page.url}):\n{describe(found)}"
