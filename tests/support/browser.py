"""Headless Chromium driven over the DevTools protocol, to play our HLS with hls.js in a real browser.

No WebDriver and no downloads: Chromium from Debian, hls.js from npm (package.json at the project root),
and the DevTools protocol over aiohttp's websocket client. The browser starts in its own process group on
a DevTools port it picks itself (read back from DevToolsActivePort) and that whole group is stopped by its
PID at the end [same rule as s3_server.py: never by name].
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HLS_JS = PROJECT_ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
PLAYER_HTML = Path(__file__).with_name("player.html")
CHROMIUM_ENV = "SERIES_TEST_CHROMIUM"     # an explicit browser path; a missing one makes the test skip

# Without the background-networking flags Chromium tries to reach Google and stalls on the sandboxed network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT_S = 20.0


def find_chromium() -> str | None:
    """The Chromium executable: $SERIES_TEST_CHROMIUM if set, else `chromium` on PATH; None when absent."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def find_hlsjs() -> Path | None:
    """node_modules/hls.js/dist/hls.min.js after `npm ci` in the project root; None when absent."""
    return HLS_JS if HLS_JS.is_file() else None


def static_app(files: dict[str, tuple[Path, str]]) -> web.Application:
    """Serves each path's file with its content type: a test page's own origin, separate from the service's
    (so CORS is real)."""
    async def serve(request: web.Request) -> web.Response:
        path, content_type = files[request.path]
        return web.Response(body=path.read_bytes(), content_type=content_type)

    app = web.Application()
    for route in files:
        app.router.add_get(route, serve)
    return app


def player_app(hls_js: Path) -> web.Application:
    """Serves /player.html and /hls.min.js."""
    return static_app({"/player.html": (PLAYER_HTML, "text/html"), "/hls.min.js": (hls_js, "text/javascript")})


class CdpError(RuntimeError):
    pass


class Page:
    """One tab over its own DevTools websocket, with its workers attached (flat sessions on the same socket).

    Console messages and exceptions of the page and of its workers (hls.js transmuxes and decrypts in a
    worker) are kept in `console`, bounded.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._new_sessions: list[str] = []
        self.console: list[str] = []
        self.requested: list[str] = []      # every URL the page asked for (with Network enabled)

    async def call(self, method: str, *, session_id: str | None = None, timeout_s: float = 10.0,
                   **params: Any) -> dict:
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if session_id:
            message["sessionId"] = session_id
        await self._ws.send_str(json.dumps(message))
        async with asyncio.timeout(timeout_s):
            while True:
                received = await self._ws.receive()
                if received.type != aiohttp.WSMsgType.TEXT:
                    raise CdpError(f"DevTools connection ended during {method}: {received.type!r}")
                data = json.loads(received.data)
                if data.get("id") == call_id:
                    if "error" in data:
                        raise CdpError(f"{method}: {data['error']}")
                    return data.get("result", {})
                self._event(data)

    async def attach_workers(self) -> None:
        """Enable Runtime in workers attached since the last call, then let them run (they wait for us)."""
        while self._new_sessions:
            session_id = self._new_sessions.pop(0)
            await self.call("Runtime.enable", session_id=session_id)
            await self.call("Runtime.runIfWaitingForDebugger", session_id=session_id)

    def _event(self, data: dict) -> None:
        method, params = data.get("method"), data.get("params", {})
        source = "worker" if data.get("sessionId") else "page"
        if method == "Network.requestWillBeSent":
            self.requested.append(params.get("request", {}).get("url", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self._keep(f"{source} log {entry.get('level')}: {entry.get('text', '')[:300]}")
        elif method == "Target.attachedToTarget":
            self._new_sessions.append(params["sessionId"])
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self._keep(f"{source} {params.get('type')}: {text[:300]}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self._keep(f"{source} exception: {details.get('exception', {}).get('description') or details.get('text')}")

    def _keep(self, line: str) -> None:
        if len(self.console) < 500:
            self.console.append(line)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


class Chromium:
    """`async with Chromium(path) as browser:` a headless browser with a fresh profile, stopped by its group."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._profile: str | None = None
        self._process: subprocess.Popen | None = None
        self._http: aiohttp.ClientSession | None = None
        self._endpoint = ""

    async def __aenter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="chromium-test-")
        log = open(Path(self._profile) / "chromium.log", "wb")
        try:
            self._process = subprocess.Popen(
                [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        try:
            port = await self._devtools_port()
            self._endpoint = f"http://127.0.0.1:{port}"
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._process is not None:
            await asyncio.to_thread(_stop_group, self._process)
            self._process = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Chromium's own stderr, for failure messages."""
        path = Path(self._profile or "/nonexistent") / "chromium.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def _devtools_port(self) -> int:
        """Chromium writes the port it chose to <profile>/DevToolsActivePort once DevTools listens."""
        assert self._process is not None and self._profile is not None
        marker = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._process.returncode}:\n{self.log_tail()}")
            text = marker.read_text() if marker.exists() else ""
            if text.strip():
                return int(text.splitlines()[0])
            await asyncio.sleep(0.05)
        raise TimeoutError(f"chromium did not open DevTools in {START_TIMEOUT_S} s:\n{self.log_tail()}")

    async def run_player(self, url: str, *, timeout_s: float = 60.0, poll_s: float = 0.25) -> dict:
        """Open `url` (player.html) in a new tab and poll window.playerState until `done` or `timeout_s`.

        Returns the last state seen, with `timed_out` and the tab's and its workers' `console` added.
        """
        assert self._http is not None, "use Chromium as an async context manager"
        async with self._http.put(f"{self._endpoint}/json/new?about:blank") as response:
            response.raise_for_status()
            target = await response.json()
        async with self._http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Runtime.enable")
            await page.call("Page.enable")
            await page.call("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=True, flatten=True)
            await page.call("Page.navigate", url=url)
            state: dict = {}
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                await page.attach_workers()
                raw = await page.evaluate("window.playerState ? JSON.stringify(window.playerState) : null")
                if raw:
                    state = json.loads(raw)
                    if state.get("done"):
                        break
                await asyncio.sleep(poll_s)
            state["timed_out"] = not state.get("done", False)
            state["console"] = page.console
            state.setdefault("aesPath", []).extend(line for line in page.console if "AES decrypt" in line)
            await page.call("Page.close")
        return state


async def open_page(browser: Chromium, url: str, *, ready: str, screenshot: Path, timeout_s: float = 30.0) -> dict:
    """Open `url` in a new tab, wait until the JavaScript expression `ready` is true, save a PNG screenshot.

    Returns {"ready": bool, "requested": [every URL asked for], "console": [console and log lines]}.
    """
    assert browser._http is not None, "use Chromium as an async context manager"
    async with browser._http.put(f"{browser._endpoint}/json/new?about:blank") as response:
        response.raise_for_status()
        target = await response.json()
    async with browser._http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
        page = Page(ws)
        for domain in ("Runtime", "Page", "Network", "Log"):
            await page.call(f"{domain}.enable")
        await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1,
                        mobile=False)
        await page.call("Page.navigate", url=url)
        deadline, is_ready = time.monotonic() + timeout_s, False
        while time.monotonic() < deadline and not is_ready:
            await asyncio.sleep(0.25)
            is_ready = bool(await page.evaluate(f"Boolean({ready})"))
        await asyncio.sleep(0.5)        # let the last paint land before the picture
        shot = await page.call("Page.captureScreenshot", format="png", timeout_s=20.0)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        await page.call("Page.close")
    return {"ready": is_ready, "requested": page.requested, "console": page.console}


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the browser's process group (renderers, zygote, utilities), then SIGKILL what is left of it.

    The leader is reaped only after the final SIGKILL: until then its PID, which is the group's id, cannot be
    reused, so the group signals reach only processes this browser started.
    """
    if process.returncode is not None:
        return                         # already reaped (it died at start): its PID may belong to anyone now
    pgid = process.pid                 # start_new_session=True: the leader's PID is the group id
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break                      # exited, not yet reaped
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
