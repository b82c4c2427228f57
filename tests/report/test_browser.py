"""The report in a real browser: Debian's chromium, driven by Playwright, with no network.

`make test` installs chromium where it is missing; this test fails, never skips, without it,
so CI cannot pass without exercising the page's script.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pot.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (or `apt-get install -y chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make test` (it installs the dev extra)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def report(tmp_path: Path, safety_check: dict[str, Any], lasso_check: dict[str, Any]) -> Path:
    """`pot report` of the safety trace and the lasso, in that order."""
    sources = []
    for name, document in (("safety.json", safety_check), ("lasso.json", lasso_check)):
        sources.append(tmp_path / name)
        sources[-1].write_text(json.dumps(document))
    out = tmp_path / "report.html"
    assert main(["report", *map(str, sources), "--out", str(out)]) == 0
    return out


def expected_changes(trace: dict[str, Any], step: int) -> set[str]:
    if step == 0:
        return set()
    before, after = trace["states"][step - 1], trace["states"][step]
    return {name for name in trace["vars"] if before[name] != after[name]}


def test_stepping_through_counterexamples_offline(
    browser: Any, report: Path, tmp_path: Path, safety_check: dict[str, Any], lasso_check: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))

    def local_only(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())

    assert page.locator("#doc-0 .doc-head .badge").text_content() == "violation"
    assert page.locator(".board .card").count() == 2

    safety = page.locator("#doc-0-0-cex")
    trace = safety_check["counterexample"]
    count = len(trace["states"])
    assert safety.locator(".position").text_content() == f"step 1 of {count}"
    assert safety.locator("[data-go=prev]").is_disabled()
    for step in range(count):
        if step:
            safety.locator("[data-go=next]").click()
        current = safety.locator(".step.current")
        assert current.count() == 1 and current.get_attribute("data-step") == str(step)
        assert safety.locator(".position").text_content() == f"step {step + 1} of {count}"
        marked = {row.get_attribute("data-var") for row in current.locator("tr.changed").all()}
        assert marked == expected_changes(trace, step), step
        label = trace["states"][step]["#meta"].get("action", "Initial state")
        assert label in (current.locator("h4").text_content() or "")
        assert current.is_visible() and safety.locator(".step:not(.current)").first.is_hidden()
    assert safety.locator("[data-go=next]").is_disabled()
    safety.locator("[data-go=prev]").click()
    assert safety.locator(".step.current").get_attribute("data-step") == str(count - 2)
    page.keyboard.press("ArrowLeft")
    assert safety.locator(".step.current").get_attribute("data-step") == str(count - 3)

    lasso = page.locator("#doc-1-0-cex")
    loop = lasso_check["counterexample"]["loop"]
    assert lasso.locator(".step.current").get_attribute("data-step") == "0"
    assert lasso.locator(".timeline li.cycle-start").get_attribute("data-step") == str(loop)
    for step in range(len(lasso_check["counterexample"]["states"])):
        lasso.locator(f'.timeline button[data-step="{step}"]').click()
        current = lasso.locator(".step.current")
        assert current.locator(".cycle-start-badge").count() == (1 if step == loop else 0)
        assert current.locator(".in-cycle-badge").is_visible() == (step >= loop)
        page.keyboard.press("Home")
        assert lasso.locator(".step.current").get_attribute("data-step") == "0"

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000
    assert errors == []
    assert requests == [report.as_uri()], "the page asked for something beyond its own file"
    context.close()
