"""The operator console in a real browser.

The real app serves /console on a TCP port; Debian's headless Chromium loads it and this
test drives it over the Chrome DevTools Protocol with aiohttp's websocket client: it types
the key, clicks, and reads the DOM, waiting on conditions with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from service.bus.broker import Broker
from service.runs import RunState
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.web import create_app
from tests.integration.conftest import Inspector
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# Each page as a reviewer sees it at 1280x800, written by every run (gitignored).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--mute-audio", "--password-store=basic",
    "--window-size=1280,1024", "--remote-debugging-port=0",
)  # fmt: skip
FULL = ("events:read", "events:replay", "runs:read", "status:read")
XSS_SUBJECT = '<img src=x onerror="window.__pwned=1">'
XSS_ERROR = "<script>window.__pwned=2</script>"
# Injected before the page's own script: remembers anything the page's CSP blocked.
WATCH_CSP = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"""
# WCAG 2.x contrast of every visible text on the page: the computed colour (an SVG text's
# fill) against the effective background, the first opaque background up the ancestors
# with any translucent ones over it composited in. Text of a disabled control is exempt,
# as WCAG has it. Answers the texts under 4.5:1 (3:1 for large: >= 24px, or >= 18.66px
# bold).
CONTRAST_FAILURES = """(() => {
  const rgba = (text) => {
    const m = /rgba?\\(([^)]*)\\)/.exec(text || '');
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => top.slice(0, 3).map(
    (c, i) => c * top[3] + under[i] * (1 - top[3])).concat(1);
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reduceRight((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const failures = [];
  for (const element of document.querySelectorAll('body *')) {
    const own = Array.from(element.childNodes).some(
      (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own || !element.getClientRects().length || element.closest(':disabled')) continue;
    const style = getComputedStyle(element);
    if (style.visibility !== 'visible') continue;
    const box = element.getBoundingClientRect();
    if (box.right < 0 || box.bottom < 0) continue;  // moved off screen (the skip link)
    const svg = element instanceof SVGElement;
    const bg = background(svg ? element.closest('svg') : element);
    let fg = rgba(svg ? style.fill : style.color);
    if (!fg) continue;
    for (let e = element; e; e = e.parentElement) fg[3] *= parseFloat(getComputedStyle(e).opacity);
    fg = over(fg, bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) {
      failures.push(`${element.tagName.toLowerCase()}#${element.id}.${element.getAttribute('class')}`
        + ` "${element.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)} < ${need}`
        + ` (${style.color} on rgb(${bg.slice(0, 3).map(Math.round)}))`);
    }
  }
  return failures;
})()"""
# Every form control has an accessible name: a <label>, aria-label or aria-labelledby.
UNLABELLED = """Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length)
    && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map((e) => e.id || e.name || e.outerHTML.slice(0, 60))"""
# What has the keyboard focus, as a selector-like name.
FOCUSED = """(() => { const e = document.activeElement;
  if (!e || e === document.body) return 'body';
  return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.dataset.view ? '[data-view=' + e.dataset.view + ']' : '')
    + (e.dataset.id ? '[data-id=' + e.dataset.id + ']' : ''); })()"""


class Page:
    """One browser tab, driven over the DevTools protocol."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events in between are skipped)."""
        call_id = next(self.ids)
        await self.socket.send_str(
            orjson.dumps({"id": call_id, "method": method, "params": params}).decode()
        )
        async with asyncio.timeout(10):
            while True:
                frame = await self.socket.receive()
                assert frame.type == aiohttp.WSMsgType.TEXT, f"DevTools closed: {frame}"
                message = orjson.loads(frame.data)
                if message.get("id") == call_id:
                    break
        assert "error" not in message, f"{method}: {message['error']}"
        result: dict[str, Any] = message["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Poll `expression` until it is truthy; fail with what the page shows."""
        deadline = time.monotonic() + timeout_s
        while not (value := await self.evaluate(expression)):
            if time.monotonic() > deadline:
                shown = await self.evaluate("document.body && document.body.innerText")
                raise AssertionError(
                    f"waited {timeout_s}s for {expression}; the page shows:\n{shown}"
                )
            await poll_interval()
        return value

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(f"location.href === {_js(url)} && document.readyState === 'complete'")

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, once no panel is loading, and the
        element is shown, enabled, on top at that point and where it was at the previous
        poll: a panel that loads re-renders its rows and shifts the layout, and a click aimed
        before that lands on something else, or on a button gone between press and release."""
        where = await self.wait_for(f"""(() => {{
            const element = document.querySelector({_js(selector)});
            if (document.querySelector('[aria-busy="true"]')) return null;
            if (!element || element.disabled || !element.getClientRects().length) return null;
            element.scrollIntoView({{block: 'center'}});
            const box = element.getBoundingClientRect();
            const at = [box.x + box.width / 2, box.y + box.height / 2];
            const hit = document.elementFromPoint(at[0], at[1]);
            const aimed = JSON.stringify([{_js(selector)}, at]);
            const steady = window.__aimed === aimed;
            window.__aimed = aimed;
            return hit && element.contains(hit) && steady ? at : null;
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=where[0], y=where[1],
                            button="left", clickCount=1)  # fmt: skip

    async def screenshot(self, name: str) -> Path:
        """The viewport (1280x800) as SCREENSHOTS/<name>.png, once fonts and layout settled."""
        await self.send("Emulation.setDeviceMetricsOverride", width=1280, height=800,
                        deviceScaleFactor=1, mobile=False)  # fmt: skip
        await self.wait_for("document.fonts.status === 'loaded'")
        await self.evaluate("new Promise((done) => requestAnimationFrame(() => done(true)))")
        shot = await self.send("Page.captureScreenshot", format="png")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def type(self, selector: str, text: str) -> None:
        await self.evaluate(f"document.querySelector({_js(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def rows(self, table: str) -> list[list[str]]:
        """The text of each cell of each body row of a table."""
        return list(
            await self.evaluate(f"""Array.from(
            document.querySelectorAll('#{table} tbody tr'),
            (tr) => Array.from(tr.cells, (td) => td.textContent))""")
        )

    async def wait_rows(self, table: str, ids: list[str], timeout_s: float = 10.0) -> None:
        """Wait until the table's first column lists exactly `ids`, in that order."""
        await self.wait_for(
            f"""JSON.stringify(Array.from(document.querySelectorAll('#{table} tbody tr'),
                (tr) => tr.cells[0].textContent)) === {_js(orjson.dumps(ids).decode())}""",
            timeout_s,
        )

    async def text(self, element_id: str) -> str:
        return str(await self.evaluate(f"document.getElementById({_js(element_id)}).textContent"))

    async def wait_text(self, element_id: str, *parts: str, timeout_s: float = 10.0) -> str:
        """Wait until the element's text holds every one of `parts` (panels load on their
        own); return the text."""
        text = f"document.getElementById({_js(element_id)}).textContent"
        await self.wait_for(" && ".join(f"{text}.includes({_js(p)})" for p in parts), timeout_s)
        return await self.text(element_id)

    async def accessible(self, name: str) -> None:
        """Every visible text contrasts enough with its background and every control is
        labelled: on the page as it is now (`name` says which, in a failure)."""
        assert await self.evaluate(CONTRAST_FAILURES) == [], f"{name}: contrast"
        assert await self.evaluate(UNLABELLED) == [], f"{name}: unlabelled controls"

    async def press(self, key: str, code: int, shift: bool = False) -> None:
        """A key press (down, then up), as the keyboard sends it."""
        text = "\r" if key == "Enter" else ""
        for kind in ("rawKeyDown" if not text else "keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                            windowsVirtualKeyCode=code, modifiers=8 if shift else 0,
                            text=text if kind == "keyDown" else "")  # fmt: skip

    async def tab_to(self, target: str, limit: int = 60) -> list[str]:
        """Press Tab from the top of the page (its skip link, the first stop) until
        `target` (as FOCUSED names it) has the focus; the names focused on the way."""
        await self.evaluate("document.querySelector('a.skip').focus()")
        seen: list[str] = [await self.evaluate(FOCUSED)]
        while seen[-1] != target:
            assert len(seen) < limit, f"Tab never reached {target}: {seen}"
            await self.press("Tab", 9)
            seen.append(await self.evaluate(FOCUSED))
        return seen

    async def sign_in(self, url: str, key: str) -> None:
        await self.open(url)
        await self.type("#key", key)
        await self.click("#use-key")


def _js(value: str) -> str:
    """`value` as a JavaScript string literal."""
    return orjson.dumps(value).decode()


@pytest.fixture
async def console(settings: Settings, broker: Broker, db: Database) -> AsyncIterator[str]:
    """The real app on a real TCP port: the console's URL."""
    runner = web.AppRunner(create_app(settings, broker, db))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/console"
    await runner.cleanup()


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; missing is a failure, not a skip: CI installs it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run deploy/ensure-chromium.sh (as root it installs "
            "Debian's chromium package) and run the tests again",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
async def page(chromium: Path, tmp_path: Path) -> AsyncIterator[Page]:
    """A tab of a fresh headless Chromium; the browser and its profile go at teardown."""
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        port = await _devtools_port(profile, process, log_path)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            socket_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(socket_url, max_msg_size=0) as socket:
                tab = Page(socket)
                await tab.send("Page.enable")
                await tab.send("Page.addScriptToEvaluateOnNewDocument", source=WATCH_CSP)
                yield tab
    finally:
        await _stop(process)
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process, log: Path) -> int:
    """The port Chromium chose, from the DevToolsActivePort file it writes once listening."""
    deadline = time.monotonic() + 15
    while (port := _active_port(profile / "DevToolsActivePort")) is None:
        if process.returncode is not None or time.monotonic() > deadline:
            pytest.fail(f"Chromium did not open its DevTools port:\n{_tail(log)}", pytrace=False)
        await poll_interval()
    return port


def _active_port(path: Path) -> int | None:
    lines = path.read_text().splitlines() if path.exists() else []
    return int(lines[0]) if len(lines) >= 2 else None  # complete once it has its 2 lines


def _tail(log: Path) -> str:
    return log.read_bytes()[-2000:].decode(errors="replace")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End the browser and every process it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived the browser
    await process.wait()


async def key(db: Database, *scopes: str) -> str:
    _, text = await db.keys.create("console-test", list(scopes), [])
    return text


async def seed_events(
    db: Database, *events: tuple[str, str, str, str, int], error: str = "RejectEvent: no"
) -> None:
    """(id, type, subject, status, attempts), oldest first."""
    now = time.time() - 60
    for n, (event_id, kind, subject, status, tries) in enumerate(events):
        at = now + n
        failed = error if status == "dead_lettered" else None
        head = LoggedEvent(event_id, kind, "test", subject, None, at, at, status, tries, failed)
        await db.events.record(head, [Attempt("h", tries, "ok", None, at, 2.0)], b"{}")


async def seed_runs(db: Database) -> None:
    """One run running, one still starting (not in flight yet)."""
    for n, fact_sheet in enumerate(("fs-1", "fs-2")):
        await db.runs.begin(correlation_id=f"c-{n}", vendor="uipath", rule="provision-app",
                            event_id=f"e-{n}", fact_sheet_id=fact_sheet, target={},
                            inputs={})  # fmt: skip
    await db.runs.started("c-0", RunState("uipath", "run-7", "running"), 0.0)
    await db.waiting.add(correlation_id="c-9", rule="provision-app", target_key="t",
                         event_id="e-9", event="{}", fact_sheet_id="fs-9", due_at=0.0)  # fmt: skip


async def dead_letter(broker: Broker, settings: Settings, event_id: str, error: str) -> None:
    body = orjson.dumps({"specversion": "1.0", "id": event_id, "source": "t", "type": "a.b.c"})
    await broker.publish(body, routing_key="a.b.c", message_id=event_id, timeout_s=5,
                         exchange=settings.amqp.dead_letter_exchange,
                         headers={"x-bridge-error": error})  # fmt: skip


async def test_the_page_loads_without_a_key_and_is_locked_down(console: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(console) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
        headers = response.headers
    assert "<script>" in page and "http://" not in page and "https://" not in page
    policy = dict(d.strip().split(" ", 1) for d in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    for directive in ("script-src", "style-src"):
        assert all(s.startswith("'sha256-") for s in policy[directive].split()), policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_console_shows_events_runs_dead_letters_and_replays(
    console: str, page: Page, db: Database, broker: Broker, settings: Settings,
    inspector: Inspector,
) -> None:  # fmt: skip
    amqp = settings.amqp
    await seed_events(
        db,
        ("d-1", "a.b.c", "fs-9", "dead_lettered", 3),
        ("d-0", "a.b.c", "fs-9", "dead_lettered", 3),
        ("e-old", "uipath.job.completed", "job-1", "handled", 1),
        ("e-dead", "leanix.factsheet.updated", "fs-2", "dead_lettered", 3),
        ("e-new", "leanix.factsheet.created", "fs-1", "handled", 1),
    )
    await seed_runs(db)
    for event_id in ("d-0", "d-1"):
        await dead_letter(broker, settings, event_id, "RejectEvent: no")
    text = await key(db, *FULL)

    await page.sign_in(console, text)
    await page.wait_rows("runs", ["uipath"])
    run = (await page.rows("runs"))[0]
    assert run[:5] == ["uipath", "run-7", "fs-1", "provision-app", "running"]
    await page.wait_rows("waiting", ["waiting"])
    start = (await page.rows("waiting"))[0]
    assert start[:4] == ["waiting", "provision-app", "fs-9", "e-9"] and start[5] == "0"
    # Dead letters come from the event log, newest first.
    await page.wait_rows("dead-letters", ["e-dead", "d-0", "d-1"])
    await page.wait_text("status", "broker ready", f"{amqp.dead_letter_queue}: 2")

    await page.click('header nav a[data-view="events"]')
    await page.wait_rows("events", ["e-new", "e-dead", "e-old", "d-0", "d-1"])
    new = (await page.rows("events"))[0]
    assert new[:5] == ["e-new", "leanix.factsheet.created", "fs-1", "handled", "1"]
    assert new[5].endswith("Z") and new[5][:2] == "20"
    await page.evaluate("""(() => { const select = document.getElementById('event-status');
        select.value = 'dead_lettered'; select.dispatchEvent(new Event('change')); })()""")
    await page.wait_rows("events", ["e-dead", "d-0", "d-1"])
    assert (await page.evaluate("location.hash")) == "#events?status=dead_lettered"

    await page.click('header nav a[data-view="overview"]')
    await page.click('#dead-letters button[data-id="d-0"]')
    await page.wait_rows("dead-letters", ["e-dead", "d-1"])
    await page.wait_for("document.getElementById('dead-letters-message').textContent"
                        ".includes('Replayed d-0')")  # fmt: skip
    await inspector.wait_count(amqp.queue, 1)  # from the dead-letter queue
    assert await inspector.count(amqp.dead_letter_queue) == 1
    await page.wait_for(
        f"document.getElementById('status').textContent.includes('{amqp.queue}: 1')"
    )

    # The key stays in this tab's sessionStorage only, and survives a reload.
    assert text not in await page.evaluate("location.href")
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("document.getElementById('key').value") == ""
    assert text in await page.evaluate("JSON.stringify(sessionStorage)")
    await page.evaluate("window.__old = true")
    await page.send("Page.reload")
    await page.wait_for("!window.__old && document.readyState === 'complete'")
    await page.wait_for("document.getElementById('key-message').textContent.includes('earlier')")
    await page.wait_rows("dead-letters", ["e-dead", "d-1"])
    assert await page.evaluate("window.__violations") == []
    assert (
        await page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    )


async def test_a_wrong_key_is_refused_and_a_missing_scope_is_named(
    console: str, page: Page, db: Database, broker: Broker, settings: Settings,
    inspector: Inspector,
) -> None:  # fmt: skip
    await seed_events(
        db,
        ("d-0", "a.b.c", "fs-9", "dead_lettered", 3),
        ("e-1", "leanix.factsheet.created", "fs-1", "handled", 1),
    )
    await dead_letter(broker, settings, "d-0", "RejectEvent: no")

    await page.sign_in(console, "lxb_nope_wrong")
    await page.wait_for(
        "document.getElementById('key-message').textContent.includes('Key refused')"
    )
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.rows("events") == []

    await page.type("#key", await key(db, "events:read"))
    await page.click("#use-key")
    await page.wait_rows("dead-letters", ["d-0"])
    lacks_runs = await page.wait_text("runs-message", "lacks scope")
    assert lacks_runs == "This key lacks scope runs:read."
    assert await page.wait_text("status", "lacks scope") == "This key lacks scope status:read."
    assert await page.wait_text("stats-message", "lacks scope") == (
        "This key lacks scope status:read."
    )
    await page.click('#dead-letters button[data-id="d-0"]')
    await page.wait_for("document.getElementById('dead-letters-message').textContent"
                        ".includes('lacks scope events:replay')")  # fmt: skip
    assert await inspector.count(settings.amqp.dead_letter_queue) == 1
    await page.click('header nav a[data-view="events"]')
    await page.wait_rows("events", ["e-1", "d-0"])
    assert await page.evaluate("window.__violations") == []


async def test_data_is_rendered_as_text_never_as_html(
    console: str, page: Page, db: Database
) -> None:
    at = time.time()
    head = LoggedEvent("e-xss", XSS_ERROR, XSS_ERROR, XSS_SUBJECT, XSS_ERROR, at, at,
                       "dead_lettered", 1, XSS_ERROR)  # fmt: skip
    data = {"factSheet": {"id": XSS_SUBJECT, "name": XSS_ERROR, "type": XSS_SUBJECT}}
    tries = [Attempt(XSS_ERROR, 1, "dead_letter", XSS_SUBJECT, at, 1.0)]
    await db.events.record(head, tries, orjson.dumps(data))

    await page.sign_in(console, await key(db, *FULL))
    await page.wait_rows("dead-letters", ["e-xss"])
    await page.wait_text("status", "broker ready")
    assert (await page.rows("dead-letters"))[0][4] == XSS_ERROR
    await page.click('header nav a[data-view="events"]')
    await page.wait_rows("events", ["e-xss"])
    assert (await page.rows("events"))[0][1:3] == [XSS_ERROR, XSS_SUBJECT]
    await page.click("#events a")
    await page.wait_rows("event-attempts", [XSS_ERROR])
    assert XSS_ERROR in await page.text("event-fact-sheet")
    assert XSS_ERROR in await page.text("payload-text")
    assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert await page.evaluate("window.__violations") == []


async def seed_story(db: Database, count: int) -> None:
    """`count` events over the last hours (a few dead letters), one Fact Sheet with a run
    written back, and a large payload."""
    now = time.time()
    for n in range(count):
        at = now - 3600 * 6 + n * (3600 * 6 / count)
        status = "dead_lettered" if n % 17 == 5 else "retrying" if n % 23 == 7 else "handled"
        data = {"factSheet": {"id": f"fs-{n % 5}", "name": f"App {n % 5}", "type": "Application"}}
        error = None if status == "handled" else "VendorRejected: 422 the release is not here"
        head = LoggedEvent(f"e-{n:03}", "leanix.factsheet.updated", "leanix:ws", f"fs-{n % 5}",
                           None, at, at + 0.2 + (n % 7) / 10, status, 1, error)  # fmt: skip
        tries = [Attempt("automation", 1, "ok" if status == "handled" else "dead_letter", error,
                         at, 12.5)]  # fmt: skip
        await db.events.record(head, tries, orjson.dumps(data))
    big = {
        "factSheet": {"id": "fs-big", "name": "Payroll", "type": "Application"},
        "fields": [{"name": f"field {n}", "value": "x" * 40} for n in range(600)],
    }
    attributes = {
        "specversion": "1.0",
        "id": "e-big",
        "source": "leanix:ws",
        "type": "leanix.factsheet.updated",
        "subject": "fs-big",
        "workspace": "ws-prod",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    head = LoggedEvent("e-big", "leanix.factsheet.updated", "leanix:ws", "fs-big", None, now - 5,
                       now - 4, "handled", 2, None, attributes=attributes)  # fmt: skip
    tries = [Attempt("automation", 1, "retry", "VendorUnavailable: 503", now - 5, 30.0),
             Attempt("automation", 2, "ok", None, now - 4, 25.0)]  # fmt: skip
    await db.events.record(head, tries, orjson.dumps(big))
    await db.runs.begin(correlation_id="c-big", vendor="uipath", rule="provision-app",
                        event_id="e-big", fact_sheet_id="fs-big", target={}, inputs={})  # fmt: skip
    state = RunState("uipath", "job-42", "running", "Running", url="https://cloud.uipath.com/j/42")
    await db.runs.started("c-big", state, 0.0)
    run = await db.runs.by_correlation("c-big")
    assert run is not None
    await db.runs.complete(run, RunState("uipath", "job-42", "succeeded", "Successful"), "e-big")
    await db.runs.written_back(run.id)


async def test_find_understand_act_and_see(
    console: str, page: Page, db: Database, settings: Settings, inspector: Inspector
) -> None:
    """From "nothing happened to my Fact Sheet" to its cause and a replay, with a
    screenshot of each page."""
    await seed_story(db, 120)
    await page.sign_in(console, await key(db, *FULL))
    await page.wait_text("tiles", "p50", "p99")
    await page.wait_for("document.querySelectorAll('#per-minute-chart rect').length > 50")
    await page.wait_for("document.querySelectorAll('#runs-chart rect').length === 1")
    assert "uipath" in await page.text("runs-chart")
    await page.wait_rows("dead-letters", [f"e-{n:03}" for n in range(119, -1, -1) if n % 17 == 5])
    await page.screenshot("overview")
    await page.accessible("overview")

    # Find: page through every event, 50 at a time, then narrow it down in the URL.
    await page.click('header nav a[data-view="events"]')
    await page.wait_for("document.querySelectorAll('#events tbody tr').length === 50")
    first = await page.rows("events")
    assert first[0][0] == "e-big"
    await page.screenshot("events")
    await page.accessible("events")
    await page.click("#older")
    await page.wait_text("page-info", "Page 2")
    await page.wait_for("document.querySelectorAll('#events tbody tr').length === 50")
    second = await page.rows("events")
    await page.click("#older")
    await page.wait_text("page-info", "Page 3")
    third = await page.rows("events")
    assert len(third) == 21 and await page.evaluate("document.getElementById('older').disabled")
    ids = [r[0] for r in first + second + third]
    assert len(set(ids)) == 121
    await page.click("#newer")
    await page.wait_text("page-info", "Page 2")
    assert await page.rows("events") == second

    base = console.split("#")[0]
    await page.open(f"{base}#events?fact_sheet=Payroll")
    await page.wait_rows("events", ["e-big"])
    assert await page.evaluate("document.getElementById('f-fact_sheet').value") == "Payroll"
    await page.open(f"{base}#events?run_id=job-42")
    await page.wait_rows("events", ["e-big"])

    # Understand: the event's page.
    await page.click("#events a")
    await page.wait_text("event-title", "e-big")
    await page.wait_rows("event-attempts", ["automation", "automation"])
    assert "Payroll (Application)" in await page.text("event-fact-sheet")
    shown = await page.text("event-attributes")  # extensions too, as received
    assert "workspacews-prod" in shown and "traceparent00-4bf92f35" in shown, shown
    runs = await page.rows("event-runs")
    assert runs[0][:4] == ["uipath", "job-42", "succeeded", "Successful"]
    assert runs[0][4].startswith("written back 20")
    assert await page.evaluate("document.querySelector('#event-runs a').href") == (
        "https://cloud.uipath.com/j/42"
    )
    summary = await page.text("payload-summary")
    assert "KB" in summary and "shown" in summary, summary
    await page.screenshot("event")
    await page.accessible("event")
    await page.click("#payload-all")
    await page.wait_for("document.getElementById('payload-all').hidden")
    assert "field 599" in await page.text("payload-text")

    # Act: replay a filtered set, after a confirmation that says how many.
    await page.click('header nav a[data-view="dead-letters-view"]')
    await page.wait_for("document.querySelectorAll('#dead-letters tbody tr').length === 7")
    await page.screenshot("dead-letters")
    await page.accessible("dead letters")
    await page.click('#dead-letters-view a[href="#events?status=dead_lettered"]')
    await page.wait_for("document.querySelectorAll('#events tbody tr').length === 7")
    await page.click("#replay-matching")
    question = await page.wait_text("replay-question", "Replay 7 events")
    assert "matching these filters" in question
    assert await page.evaluate("document.activeElement.id") == "replay-yes"
    await page.screenshot("replay-confirmation")
    await page.accessible("replay confirmation")
    await page.click("#replay-yes")
    await page.wait_text("events-message", "Replayed 7 of 7 events.")
    await page.wait_rows("events", [])
    await inspector.wait_count(settings.amqp.queue, 7)
    found = await db.events.get("e-005")
    assert found is not None and found[1][-1].handler == "replayed by console-test"
    await page.click('header nav a[data-view="dead-letters-view"]')
    await page.wait_text("dead-letters-message", "No dead letters.")
    assert await page.evaluate("window.__violations") == []


async def test_the_console_works_from_the_keyboard(
    console: str, page: Page, db: Database, settings: Settings, inspector: Inspector
) -> None:
    """Every control has a label; Tab reaches the views, the key input and the Replay
    buttons, in the page's order, and Enter activates each; Enter submits the search."""
    await seed_story(db, 6)  # e-005 is a dead letter
    await page.open(console)
    await page.accessible("signed out")
    await page.evaluate("""(() => { const faint = document.createElement('p');
        faint.id = 'faint'; faint.textContent = 'faint'; faint.style.color = '#999';
        document.body.append(faint); })()""")  # 2.8:1 on white (CSSOM: the CSP allows it)
    assert len(failing := await page.evaluate(CONTRAST_FAILURES)) == 1 and "faint" in failing[0]
    await page.evaluate("document.getElementById('faint').remove()")
    views = [f"a[data-view={v}]" for v in ("overview", "events", "dead-letters-view")]
    assert await page.tab_to("input#key") == ["a", *views, "input#key"]  # skip link first
    await page.send("Input.insertText", text=await key(db, *FULL))
    await page.press("Enter", 13)
    await page.wait_rows("dead-letters", ["e-005"])
    await page.wait_text("status", "broker ready")

    path = await page.tab_to("button[data-id=e-005]")
    assert path[: len(views) + 2] == ["a", *views, "input#key"]
    await page.press("Enter", 13)
    await page.wait_text("dead-letters-message", "Replayed e-005")
    await inspector.wait_count(settings.amqp.queue, 1)

    await page.tab_to(views[1])
    await page.press("Enter", 13)
    await page.wait_rows("events", ["e-big", "e-005", "e-004", "e-003", "e-002", "e-001",
                                    "e-000"])  # fmt: skip
    await page.accessible("events, from the keyboard")
    await page.tab_to("input#f-fact_sheet")
    await page.send("Input.insertText", text="App 1")
    await page.press("Enter", 13)
    await page.wait_rows("events", ["e-001"])
    assert await page.evaluate("location.hash") == "#events?fact_sheet=App+1"
