"""One browser tab driven step by step over the DevTools protocol, for walks through the web app: open a
URL, wait for a JavaScript condition, click, fill in, read values, take screenshots. Every request the tab
makes and every console line it logs (page and workers) is kept for the test to check."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.browser import Chromium, Page

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
DESKTOP = {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False}


class Tab:
    """`async with Tab(browser) as tab:` a new tab (its own sessionStorage), closed at the end."""

    def __init__(self, browser: Chromium, viewport: dict = DESKTOP) -> None:
        self._browser = browser
        self._viewport = viewport
        self._ws_context = None
        self.page: Page | None = None

    async def __aenter__(self) -> Tab:
        http = self._browser._http
        assert http is not None, "use Chromium as an async context manager"
        async with http.put(f"{self._browser._endpoint}/json/new?about:blank") as response:
            response.raise_for_status()
            target = await response.json()
        self._ws_context = http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        self.page = Page(await self._ws_context.__aenter__())
        for domain in ("Runtime", "Page", "Network", "Log"):
            await self.page.call(f"{domain}.enable")
        # workers (hls.js's) are attached for their console, without waiting for us to let them start
        await self.page.call("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=False, flatten=True)
        await self.page.call("Emulation.setDeviceMetricsOverride", **self._viewport)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.page.call("Page.close")
        finally:
            await self._ws_context.__aexit__(*exc_info)

    @property
    def requested(self) -> list[str]:
        return self.page.requested

    @property
    def console(self) -> list[str]:
        return self.page.console

    async def goto(self, url: str) -> None:
        await self.page.call("Page.navigate", url=url)
        await self.page.attach_workers()

    async def evaluate(self, expression: str) -> Any:
        await self.page.attach_workers()
        return await self.page.evaluate(expression)

    async def wait_for(self, expression: str, *, timeout_s: float = 30.0, what: str = "") -> Any:
        """Poll until `expression` is truthy; its value. TimeoutError naming `what` and the console's tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.evaluate(f"(() => {{ try {{ const v = {expression}; return v instanceof Node || v; }}"
                                        " catch (e) { return null; } })()")
            if value:
                return value
            await asyncio.sleep(0.2)
        raise TimeoutError(f"waited {timeout_s} s for {what or expression}\n-- console --\n"
                           + "\n".join(self.console[-25:]))

    async def click(self, selector: str) -> None:
        """Click the element as a person would: with a user activation (so the page may start sound)."""
        result = await self.page.call("Runtime.evaluate", returnByValue=True, userGesture=True, expression=(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"))
        assert result.get("result", {}).get("value"), f"nothing matches {selector}: {result}"

    async def hover(self, selector: str) -> None:
        """Move the mouse over the element's middle (a player shows its controls)."""
        box = await self.rect(selector)
        await self.page.call("Input.dispatchMouseEvent", type="mouseMoved", x=box["x"] + box["width"] / 2,
                             y=box["y"] + box["height"] / 2)

    async def fill(self, selector: str, text: str) -> None:
        await self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                            f" el.focus(); el.value = {json.dumps(text)};"
                            " el.dispatchEvent(new Event('input', {bubbles: true})); })()")

    async def submit(self, selector: str) -> None:
        await self.page.call("Runtime.evaluate", userGesture=True,
                             expression=f"document.querySelector({json.dumps(selector)}).requestSubmit()")

    async def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose files in an <input type=file>, as a person picking them would (input and change fire)."""
        document = await self.page.call("DOM.getDocument", depth=0)
        node = await self.page.call("DOM.querySelector", nodeId=document["root"]["nodeId"], selector=selector)
        assert node.get("nodeId"), f"nothing matches {selector}"
        await self.page.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(path) for path in paths])

    async def press(self, key: str, *, code: int, alt: bool = False) -> None:
        """A key press on the focused element (`code`: the Windows virtual key code, e.g. 40 for ArrowDown)."""
        for kind in ("rawKeyDown", "keyUp"):
            await self.page.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                                 modifiers=1 if alt else 0)

    async def screenshot(self, path: Path) -> np.ndarray:
        """Save a PNG of the viewport; its pixels (height x width x 3, uint8) for checks."""
        await asyncio.sleep(0.3)        # let the last paint land
        shot = await self.page.call("Page.captureScreenshot", format="png", timeout_s=20.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return read_png(path)

    async def rect(self, selector: str) -> dict:
        """The element's box in CSS pixels of the viewport: {x, y, width, height}."""
        return await self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                   ".getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")


def read_png(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def region(pixels: np.ndarray, rect: dict) -> np.ndarray:
    """The pixels inside `rect` (a Tab.rect answer, CSS pixels at device scale 1)."""
    top, left = max(0, int(rect["y"])), max(0, int(rect["x"]))
    return pixels[top:top + int(rect["height"]), left:left + int(rect["width"])]
