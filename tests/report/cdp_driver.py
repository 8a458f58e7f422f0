"""A minimal Chrome DevTools Protocol driver (fallback when Playwright is not installed).

Launches the system Chromium with ``--remote-debugging-port=0`` and talks to
it over a websocket with tornado (already a dependency through dask
distributed).  It offers what the browser test needs: open a page with every
network request intercepted (the page's own URL is allowed, everything else
is recorded and failed), evaluate JavaScript, take a full-page screenshot
and collect console errors.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time


class CdpPage:
    def __init__(self, chromium: str, args: list[str], timeout_s: float = 60.0):
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="emgtool-cdp-")
        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                *args,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ws_url = self._wait_ws_url()
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self.allowed: set[str] = set()
        self._pending: dict[int, asyncio.Future] = {}
        self._events: list[dict] = []
        self.loop.run_until_complete(self._connect())

    # ------------------------------------------------------------------ plumbing
    def _wait_ws_url(self) -> str:
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout_s:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                return m.group(1)
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("Chromium did not print a DevTools websocket URL")

    async def _connect(self) -> None:
        from tornado.websocket import websocket_connect

        self.ws = await websocket_connect(self.ws_url, max_message_size=512 * 1024 * 1024)
        self.reader = asyncio.ensure_future(self._read())
        target = await self._call("Target.createTarget", url="about:blank")
        att = await self._call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self.session = att["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            await self._call(f"{domain}.enable", session=True)
        await self._call("Fetch.enable", session=True, patterns=[{"urlPattern": "*"}])

    async def _read(self) -> None:
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                return
            m = json.loads(msg)
            if "id" in m and m["id"] in self._pending:
                fut = self._pending.pop(m["id"])
                if "error" in m:
                    fut.set_exception(RuntimeError(str(m["error"])))
                else:
                    fut.set_result(m.get("result", {}))
                continue
            self._events.append(m)
            await self._on_event(m)

    async def _on_event(self, m: dict) -> None:
        method, p = m.get("method"), m.get("params", {})
        if method == "Fetch.requestPaused":
            url = p["request"]["url"]
            self.requests.append(url)
            if url in self.allowed:
                await self._send("Fetch.continueRequest", requestId=p["requestId"])
            else:
                await self._send(
                    "Fetch.failRequest", requestId=p["requestId"], errorReason="BlockedByClient"
                )
        elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
            self.console_errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
            )
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(str(p.get("exceptionDetails", {}).get("text")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.console_errors.append(p["entry"].get("text", ""))

    async def _send(self, method: str, session: bool = True, **params) -> asyncio.Future:
        i = next(self.ids)
        fut = self.loop.create_future()
        self._pending[i] = fut
        msg = {"id": i, "method": method, "params": params}
        if session and getattr(self, "session", None):
            msg["sessionId"] = self.session
        await self.ws.write_message(json.dumps(msg))
        return fut

    async def _call(self, method: str, session: bool = False, **params) -> dict:
        fut = await self._send(method, session=session, **params)
        return await asyncio.wait_for(fut, self.timeout_s)

    def call(self, method: str, **params) -> dict:
        return self.loop.run_until_complete(self._call(method, session=True, **params))

    # ------------------------------------------------------------------ API
    def goto(self, url: str) -> None:
        self.allowed.add(url)
        n0 = len(self._events)

        async def nav():
            await self._call("Page.navigate", session=True, url=url)
            t0 = time.monotonic()
            while not any(e.get("method") == "Page.loadEventFired" for e in self._events[n0:]):
                if time.monotonic() - t0 > self.timeout_s:
                    raise TimeoutError(f"{url} did not load")
                await asyncio.sleep(0.05)

        self.loop.run_until_complete(nav())

    def evaluate(self, expression: str):
        r = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("text"))
        return r["result"].get("value")

    def screenshot(self, width: int = 1200) -> bytes:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        r = self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(r["data"])

    def close(self) -> None:
        if self.loop.is_closed():
            return  # already closed
        try:
            self.reader.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc.stderr.close()
            self.loop.close()
            shutil.rmtree(self.profile, ignore_errors=True)
