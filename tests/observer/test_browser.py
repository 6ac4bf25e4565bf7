"""The dashboard in a real browser: Playwright drives Debian's headless
chromium against the page served by uvicorn on a free loopback port.

Marked ``slow`` (deselect with ``-m 'not slow'``). Skipped, with the reason,
only when ``/usr/bin/chromium`` or the ``playwright`` package is missing (CI
installs both: ``.ci/run`` and the ``dev`` extra). Every wait on the page is
bounded by Playwright's ``expect`` timeouts; the restart must show within
1 s. A screenshot is saved to ``tests/artifacts/dashboard.png``.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import Caller, GenServer, Pid, Strategy, Supervisor, call, cast, whereis
from asyncotp.observer import serve_dashboard
from asyncotp.testing import crash, wait_for_restart
from tests.helpers import ROOT, Gate, started, wait

try:
    from playwright.async_api import Browser, async_playwright, expect
except ImportError:  # pragma: no cover - the tests below skip, saying why
    PLAYWRIGHT = False
else:
    PLAYWRIGHT = True

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
    pytest.mark.skipif(
        not PLAYWRIGHT, reason="needs the playwright package (pip install playwright)"
    ),
]


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if isinstance(request, Gate):
            await request.pass_through()  # busy until the test opens the gate
        return request

    async def handle_cast(self, request: Any) -> None:
        pass


async def start_shop() -> Pid:
    """The demonstration's shape: prices, payments (rest_for_one: gateway,
    ledger) and a mailer."""
    payments = Supervisor.child_spec(
        [Worker.child_spec(id="gateway", name="gateway"), Worker.child_spec(id="ledger")],
        id="payments",
        name="payments",
        strategy=Strategy.REST_FOR_ONE,
    )
    return await Supervisor.start(
        [
            Worker.child_spec(id="prices", name="prices"),
            payments,
            Worker.child_spec(id="mailer", name="mailer"),
        ],
        name="shop",
    )


@contextlib.asynccontextmanager
async def browser_on_dashboard() -> AsyncIterator[tuple[Browser, str]]:
    """A headless chromium, and the URL of the dashboard it can open."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_dashboard, None, port=0))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                yield browser, f"http://127.0.0.1:{port}/"
            finally:
                await browser.close()
        tg.cancel_scope.cancel()


async def test_the_page_draws_the_tree_and_shows_a_restart_within_a_second(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    mailer = whereis("mailer")
    assert mailer is not None
    gate = Gate()
    busy = await started(call(mailer, gate, timeout=None))
    await wait(gate.entered.wait())
    for n in range(7):
        cast(mailer, n)  # seven emails queue up behind the busy call

    async with browser_on_dashboard() as (browser, url):
        page = await browser.new_page(viewport={"width": 1400, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(url)

        # The tree: every supervisor and child, by id.
        for child_id in ("shop", "prices", "payments", "gateway", "ledger", "mailer"):
            await expect(page.locator(f'[data-child-id="{child_id}"]')).to_be_visible(
                timeout=10_000
            )
        gateway = page.locator('[data-child-id="gateway"]')
        await expect(gateway).to_have_attribute("data-restarts", "0")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")

        # The busiest actors: the mailer and its queue come first.
        first_row = page.locator("#top tbody tr").first
        await expect(first_row).to_have_attribute("data-pid", str(mailer.number))
        await expect(first_row.locator("td").nth(3)).to_have_text("7")

        # A crash: within 1 s the page counts the restart and flashes the child.
        old = whereis("gateway")
        assert old is not None
        await crash(old)
        await expect(gateway).to_have_attribute("data-restarts", "1", timeout=1_000)
        await expect(gateway).to_have_class(re.compile(r"\bflash\b"), timeout=1_000)
        new = await wait_for_restart("payments", "gateway", old)
        await expect(gateway.locator(".pid")).to_have_text(f"<{new.number}>")
        summary = page.locator("#restart-summary")
        await expect(summary).to_have_attribute("data-total", "1")
        assert await page.locator("#sparkline rect").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # A click shows the child's details; the highlight fades after 2 s.
        await gateway.click()
        details = page.locator("#details")
        await expect(details.locator("h3")).to_have_text("gateway")
        await expect(details).to_contain_text("restarts1")
        await expect(details).to_contain_text(f"<{new.number}>")
        await expect(gateway).not_to_have_class(re.compile(r"\bflash\b"), timeout=5_000)
        assert errors == []

    gate.open()
    assert await wait(busy) is gate
