"""Headless Chromium opens the built site: the summary table is there, tabs switch answers, no answer's script runs.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ending in NUL
on fds 3 and 4), so no websocket library is needed. Screenshots go to artifacts/ (gitignored; kept by CI).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import select
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench
from site_helpers import HOSTILE, ROOT, hostile_answer, mkdocs_build, project

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "artifacts"
TRAP = ("<script>window.__pwned=1;document.title='pwned'</script>\n"
        "<img src=x onerror=\"window.__pwned=1;document.title='pwned'\">")


@pytest.fixture
def chromium() -> str:
    """The browser, looked up before the site is built: skipped without it, except under CI where it fails."""
    return chromium_binary()


def chromium_binary() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        if name and (path := shutil.which(name)):
            return path
    reason = "Chromium not found (install the Debian package 'chromium' or set CHROMIUM=/path/to/chrome)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI is set, so the browser test must run")
    pytest.skip(reason)


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, binary: str, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--window-size=1280,1000", f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "about:blank"]
        # The protocol wants our pipes as its fds 3 (commands in) and 4 (replies out); bash, not sh, because
        # dash cannot redirect from fds above 9.
        remap = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen([shutil.which("bash") or "/bin/bash", "-c", remap, binary, *args],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.page("Page.enable")
            self.page("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _message(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, timeout: float = 20, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def wait_event(self, method: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message(max(0.01, deadline - time.monotonic())))

    def open(self, url: str) -> None:
        self.events.clear()
        self.page("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(condition):
                return True
            time.sleep(0.1)
        return False

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (not element.click())."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      f" e.scrollIntoView({{block: 'center'}});"
                      f" const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        params = {"format": "png"}
        if full_page:
            size = self.page("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.page("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def site(isolated: Path) -> Path:
    """A built site: two models, one of which answers with every hostile text and a script trap."""
    tasks = [{"id": "hostile", "title": "Hostile answer", "prompt": "All cases together."},
             {"id": "plain", "title": "Plain question", "prompt": "Case script"}]
    big = FakeModel("gemma3:27b", answer=lambda p: TRAP + "\n" + hostile_answer(p), parameter_size="27.4B",
                    chunk_delay_s=0.01)
    local = FakeModel("gemma3:4b", answer=lambda p: "The local model's answer.\n\n```python\nprint('hi')\n```\n",
                      thinking="Short thought.")
    with FakeOllama([big, local]) as server:
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
        data = yaml.safe_load(bench.read_text())
        data["models"][1]["think"] = True
        bench.write_text(yaml.safe_dump(data, sort_keys=False))
        assert bench_cli("run", "--config", str(bench)) == 0
    result = mkdocs_build(project(isolated), isolated / "site")
    assert result.returncode == 0, result.stderr
    return isolated / "site"


@pytest.fixture
def served(site: Path):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _viewport(browser: Browser, width: int, height: int = 900) -> None:
    browser.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                 mobile=width < 600)


# How many characters of the answer's code font fit on one line of its code block.
CODE_CHARS = """(() => {
  const code = document.querySelector('.bench-answer pre > code');
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre';
  probe.textContent = 'x'.repeat(100);
  code.appendChild(probe);
  const char = probe.getBoundingClientRect().width / 100;
  probe.remove();
  const style = getComputedStyle(code);
  return (code.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight)) / char;
})()"""
WINNER_IN_VIEW = """(() => {
  const th = [...document.querySelectorAll('th')].find(h => h.innerText.trim() === 'Winner');
  const r = th.getBoundingClientRect();
  return {left: r.left, right: r.right, width: window.innerWidth,
          pageScrolls: document.documentElement.scrollWidth > window.innerWidth};
})()"""
SHOWN = "[...document.querySelectorAll('.bench-answer')].map(s => s.offsetParent !== null)"


def test_the_site_in_a_browser(chromium, served, tmp_path):
    browser = Browser(chromium, tmp_path / "profile")
    try:
        for width in (1400, 412):
            _viewport(browser, width)
            browser.open(f"{served}/big-brain-benchmark/")
            headers = browser.js("[...document.querySelectorAll('table')].map(t => t.tHead && t.tHead.innerText.trim())")
            assert any(h and h.split("\t") == ["Task", "Big Brain", "Local", "Winner"] for h in headers), headers
            winner = browser.js(WINNER_IN_VIEW)
            assert 0 <= winner["left"] and winner["right"] <= winner["width"], (width, winner)
            assert not winner["pageScrolls"], width
            assert browser.js("document.querySelector('img[src$=\"latency.svg\"]').naturalWidth") > 0
            assert browser.js("document.querySelector('img[src$=\"checks.svg\"]').naturalWidth") > 0
            assert browser.js("document.querySelectorAll('.bench-card').length") == 2
            browser.screenshot(ARTIFACTS / f"summary-{width}.png", full_page=True)

        # 1400 px: the two answers side by side, each code column at least 80 characters wide.
        _viewport(browser, 1400)
        browser.open(f"{served}/tasks/hostile/")
        assert browser.js(SHOWN) == [True, True]
        boxes = browser.js("[...document.querySelectorAll('.bench-answer')].map(s => {"
                           " const r = s.getBoundingClientRect(); return [r.left, r.top, r.right]; })")
        assert boxes[0][1] == boxes[1][1] and boxes[0][2] <= boxes[1][0], boxes
        assert browser.js(CODE_CHARS) >= 80
        first = browser.js("document.querySelector('.bench-answer .bench-rendered').innerText")
        assert "window.__pwned=1;document.title='pwned'" in first and "<script>" in first
        browser.js("document.querySelector('.bench-answers').scrollIntoView()")
        browser.screenshot(ARTIFACTS / "task-1400.png")
        # The switch to the exact raw text.
        assert not browser.js("document.querySelector('.bench-raw').offsetParent")
        browser.click(".bench-raw-label")
        assert browser.js("document.querySelector('.bench-raw').offsetParent !== null")
        raw = browser.js("document.querySelector('.bench-raw code').textContent")
        assert raw.startswith(TRAP) and HOSTILE["fence"] in raw
        assert browser.js("typeof window.__pwned") == "undefined" and "pwned" not in browser.js("document.title")

        # 412 px: one tab per model.
        _viewport(browser, 412)
        browser.open(f"{served}/tasks/hostile/")
        assert browser.js(SHOWN) == [True, False]
        browser.click(".bench-tab-label:nth-of-type(2)")
        assert browser.js(SHOWN) == [False, True]
        assert "The local model's answer." in browser.js("document.querySelectorAll('.bench-answer')[1].innerText")
        browser.js("document.querySelector('.bench-answers').scrollIntoView()")
        browser.screenshot(ARTIFACTS / "task-412.png")
        assert not browser.js("document.documentElement.scrollWidth > window.innerWidth")

        assert browser.js("typeof window.__pwned") == "undefined"
        assert "pwned" not in browser.js("document.title")

        # The search index holds the answers too; showing them as results must not run them either.
        _viewport(browser, 1400)
        browser.open(f"{served}/tasks/hostile/")
        browser.click("label.md-search__icon, .md-search__input")
        browser.page("Input.insertText", text="onerror")
        results = "document.querySelectorAll('.md-search-result__item').length"
        assert browser.wait_for(f"{results} > 0"), "search found nothing"
        assert "onerror" in browser.js("document.querySelector('.md-search-result').innerText")
        browser.screenshot(ARTIFACTS / "search.png")
        assert browser.js("document.querySelectorAll('iframe, .bench-answer script, .bench-answer img').length") == 0
        assert browser.js("typeof window.__pwned") == "undefined" and "pwned" not in browser.js("document.title")
    finally:
        browser.close()
