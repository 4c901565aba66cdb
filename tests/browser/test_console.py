"""The console in a real browser (headless Chromium) against a real `router serve` of the default config
(config/router.yaml, as a fresh clone holds it): its functions, a call from a Test template seen in the live
list with its REPORT line, an opened invocation, a graph that moves, every page saved as a screenshot; and
with `server.auth_token` set, the page asks for the token and works once given.

The views are reached with the keyboard shortcuts (1-5), so those are tested too.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.integration.inspect_client import Inspector
from tests.integration.test_quickstart import fresh_clone
from tests.support import RouterProcess, free_port, wait_for

# The first test may install chromium (the session fixture in conftest.py): more than the usual 120 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DEFAULT_FUNCTIONS = ["echo_node", "hello", "on_mail", "on_upload", "tick"]
WAIT_MS = 30_000  # how long an expectation waits for the page (a loaded machine is slow, never wrong)
expect.set_options(timeout=WAIT_MS)


async def default_router(base: Path, token: str = "") -> RouterProcess:
    fresh_clone(base)
    env = {
        "ROUTER_PORT": str(free_port()),
        "ROUTER_HTTP_PORT": str(free_port()),
        "ROUTER_SMTP_PORT": str(free_port()),
        "ROUTER_STATE_DIR": str(base / "state"),
        "ROUTER_TOKEN": token,
    }
    config = base / "config" / "router.yaml"
    router = RouterProcess(config.parent, config.read_text(), env)
    await router.start()
    return router


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[RouterProcess]:
    made = await default_router(tmp_path)
    yield made
    made.cleanup()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1366, "height": 860})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    await context.close()
    assert errors == [], errors  # no uncaught script error on any page


async def invoke(url: str, function: str, payload: Any) -> None:
    async with aiohttp.ClientSession() as session:
        path = f"{url}/2015-03-31/functions/{function}/invocations"
        async with session.post(path, data=json.dumps(payload)) as response:
            assert response.status == 200, await response.text()


async def shot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


async def test_functions_test_invocations_graphs_sources_failures(router, page: Page, shots: Path) -> None:
    await page.goto(f"{router.url}/console/")
    rows = page.locator("#functions-table tbody tr")
    await expect(rows).to_have_count(len(DEFAULT_FUNCTIONS))
    names = await page.locator("#functions-table tbody tr td:first-child").all_inner_texts()
    assert names == DEFAULT_FUNCTIONS
    await expect(page.locator("#live")).to_have_text("live")

    # Test (3): the hello function with the HTTP template (the shape of the source routed to it)
    await page.keyboard.press("3")
    form = page.locator("#invoke-form")
    await form.locator("select[name=function]").select_option("hello")
    await expect(form.locator("select[name=template]")).to_have_value("http")
    event = json.loads(await form.locator("textarea[name=event]").input_value())
    event["pathParameters"] = {"name": "console"}
    await form.locator("textarea[name=event]").fill(json.dumps(event))
    await form.locator("button[type=submit]").click()
    result = page.locator("#invoke-result")
    await expect(result.locator(".badge")).to_have_text("success")
    await expect(result).to_contain_text("console")  # the function's answer, from the edited event
    await expect(result.locator(".log .report")).to_contain_text("REPORT RequestId: ")
    request_id = await page.locator("#invoke-request-id").inner_text()
    await shot(page, shots, "3-test")

    # Invocations (2): the call in the live list with its REPORT line; opened, its event and log
    await page.keyboard.press("Escape")
    await page.locator("body").focus()
    await page.keyboard.press("2")
    row = page.locator(f'#inv-table tr[data-request-id="{request_id}"]')
    await expect(row.locator("td.report")).to_contain_text(f"REPORT RequestId: {request_id}")
    await expect(row).to_contain_text("hello")
    await row.focus()
    await page.keyboard.press("Enter")
    detail = page.locator("#inv-detail")
    await expect(detail).to_contain_text(request_id)
    await expect(detail.locator(".log .report")).to_contain_text(f"REPORT RequestId: {request_id}")
    await expect(detail.locator(".log .start")).to_contain_text(f"START RequestId: {request_id}")
    await expect(detail.locator("pre.json").first).to_contain_text('"console"')
    await shot(page, shots, "2-invocations")
    await page.keyboard.press("Escape")
    await expect(detail).to_be_hidden()

    # Functions (1): hello's graph counts the call, and moves when another one comes (the live feed)
    await page.keyboard.press("1")
    await page.locator("#functions-table a", has_text="hello").click()
    chart = page.locator('#function-detail figure[data-chart="invocations"]')
    await expect(chart).to_have_attribute("data-sum", "1")
    await invoke(router.url, "hello", {"pathParameters": {"name": "again"}})
    await expect(chart).to_have_attribute("data-sum", "2")
    await expect(page.locator('#function-detail figure[data-chart="duration"] circle').first).to_be_attached()
    await shot(page, shots, "1-functions")

    # Sources (4) and Failures (5)
    await page.keyboard.press("4")
    await expect(page.locator("#sources-list article.source")).to_have_count(4)
    await expect(page.locator('article[data-source="api"]')).to_contain_text("GET /hello/{name}")
    await expect(page.locator('article[data-source="uploads"] .badge.running')).to_be_visible()
    await shot(page, shots, "4-sources")
    await page.keyboard.press("5")
    owner = "functions.on_upload.async.on_failure"
    await expect(page.locator(f'#destinations article[data-owner="{owner}"]')).to_be_visible()
    await expect(page.locator("#queue-table tbody tr")).to_have_count(len(DEFAULT_FUNCTIONS))
    await shot(page, shots, "5-failures")


async def test_with_a_token_the_page_asks_for_it_and_works_once_given(
    tmp_path: Path, page: Page, shots: Path
) -> None:
    router = await default_router(tmp_path, token="s3cret-console")
    try:
        await page.goto(f"{router.url}/console/")
        dialog = page.locator("#token-dialog")
        await expect(dialog).to_be_visible()
        await expect(page.locator("#live")).to_have_text("needs token")
        await dialog.locator("input[name=token]").fill("wrong")
        await dialog.locator("input[name=token]").press("Enter")
        await expect(page.locator("#token-error")).to_have_text("That token was refused.")
        await shot(page, shots, "0-token")
        await dialog.locator("input[name=token]").fill("s3cret-console")
        await dialog.locator("input[name=token]").press("Enter")
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#functions-table tbody tr")).to_have_count(len(DEFAULT_FUNCTIONS))
        await expect(page.locator("#live")).to_have_text("live")
        # kept for the tab's session: a reload needs no token again
        await page.reload()
        await expect(page.locator("#functions-table tbody tr")).to_have_count(len(DEFAULT_FUNCTIONS))
        await expect(dialog).to_be_hidden()
        await asyncio.sleep(0)
    finally:
        router.cleanup()


FAILING = """
server: {port: "${ROUTER_PORT}"}
state_dir: state
functions:
  fail:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/fail"
    async: {max_retries: 0, on_failure: {directory: failed/fail}}
  echo:
    runtime: python3.11
    handler: app.handler
    code: "${FUNCTIONS}/inspect_echo"
sources:
  drop: {kind: s3, bucket: drop, directory: bucket}
routes:
  - {source: drop, function: fail}
"""


async def test_inject_filter_failures_redrive_and_replay(make_router, page: Page, shots: Path) -> None:
    router = await make_router(FAILING)
    await invoke(router.url, "echo", {"n": 1})
    await page.goto(f"{router.url}/console/#/test")

    # inject the S3 template into the source: queued, then the function fails into its destination
    inject = page.locator("#inject-form")
    await expect(inject.locator("select[name=source]")).to_have_value("drop")
    await expect(inject.locator("textarea[name=event]")).to_have_value(re.compile('"eventSource": "aws:s3"'))
    await inject.locator("button[type=submit]").click()
    await expect(page.locator("#inject-result .badge")).to_have_text("queued")

    # the live list, filtered to errors: only the failed call, from the source
    await page.keyboard.press("2")
    await page.locator("#inv-filters select[name=outcome]").select_option("error")
    rows = page.locator("#inv-table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("drop")
    await expect(rows.first).to_contain_text("error: ValueError")
    await page.locator("#inv-filters select[name=outcome]").select_option("")
    await expect(rows).to_have_count(2)

    # Failures: the record held in the destination, a dry-run redrive, a dry-run replay
    # the destination is written after the failed call is recorded: the view must not open before
    def held(destinations: list[dict[str, Any]]) -> list[int]:
        return [d["count"] for d in destinations if d["owner"] == "functions.fail.async.on_failure"]

    assert held(await wait_for(Inspector(router.url).failures, lambda ds: held(ds) == [1], 20)) == [1]
    await page.keyboard.press("5")
    owner = page.locator('#destinations article[data-owner="functions.fail.async.on_failure"]')
    await expect(owner).to_contain_text("1 held")
    await owner.get_by_role("button", name="Redrive: dry run").click()
    await expect(owner).to_contain_text("1 would be sent.")
    replay = page.locator("#replay-form")
    await replay.locator("select[name=function]").select_option("fail")
    await replay.locator("button[type=submit]").click()
    await expect(page.locator("#replay-result")).to_contain_text("1 selected")
    await shot(page, shots, "5-failures-held")
