"""End to end: run, render, `mkdocs build --strict`, then read the HTML. Hostile answers stay inert text."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from conftest import bench_cli, write_bench
from site_helpers import HOSTILE, Page, hostile_answer, mkdocs_build, project

from generator.records import sha256
from generator.render import visible

HOSTILE_TASKS = [{"id": f"case-{name}", "title": f"Case {name}", "prompt": f"Case {name}"} for name in HOSTILE] + [
    {"id": "everything", "title": "Everything at once", "prompt": "All cases together.",
     "checks": [{"type": "regex", "pattern": "<script>[^\\n]*"},
                {"type": "contains", "value": "not in any answer", "name": "a check <b>named</b> | [x](y)"}]},
]
THINKING = "Thinking about <script>window.__pwned=1</script>\n```\n</details><img src=x onerror=alert(1)>"
EVENT_ATTRIBUTE = re.compile(r"^on", re.IGNORECASE)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One hostile run, rendered and built, shared by the tests of this module (a build takes seconds)."""
    import os
    import sys

    tmp = tmp_path_factory.mktemp("site")
    cache = tmp / "cache"
    old_cwd, old_cache = os.getcwd(), os.environ.get("BENCH_CACHE_DIR")
    os.chdir(tmp)
    os.environ["BENCH_CACHE_DIR"] = str(cache)
    try:
        sys.path.insert(0, str(tmp))
        from ollama_server import FakeModel, FakeOllama

        big = FakeModel("gemma3:27b", answer=hostile_answer)
        local = FakeModel("gemma3:4b", answer=lambda p: "A harmless answer to: " + p, thinking=THINKING)
        with FakeOllama([big, local]) as server:
            bench = write_bench(tmp / "benchmark.yaml", big_host=server.url, tasks=HOSTILE_TASKS)
            data = yaml.safe_load(bench.read_text())
            data["models"][1]["think"] = True
            data["title"] = 'Bench <img src=x onerror="window.__pwned=1"> & co'
            bench.write_text(yaml.safe_dump(data, sort_keys=False))
            (tmp / "reviews.yaml").write_text(yaml.safe_dump([
                {"task": "everything", "model": "local", "score": 2, "reviewer": "<b>eve</b>", "date": "2026-01-30",
                 "label": "bad | <script>window.__pwned=1</script>",
                 "issues": ["[click](javascript:window.__pwned=1)", "<img src=x onerror=alert(1)>\n!!! danger"],
                 "output_sha256": sha256("A harmless answer to: All cases together.")}]))
            assert bench_cli("run", "--config", str(bench)) == 0
            assert bench_cli("render", "--config", str(bench)) == 0
        config = project(tmp)
        result = mkdocs_build(config, tmp / "site")
        assert result.returncode == 0, result.stderr
        yield tmp, result
    finally:
        os.chdir(old_cwd)
        if old_cache is None:
            os.environ.pop("BENCH_CACHE_DIR", None)
        else:
            os.environ["BENCH_CACHE_DIR"] = old_cache


def pages(site):
    return {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}


def test_the_build_is_strict_clean_and_rerenders_nothing(built):
    tmp, result = built
    assert "WARNING" not in result.stderr
    assert "bench: rendered" in result.stderr and "0 file(s) changed" in result.stderr
    site = tmp / "site"
    for page in ["index.html", "big-brain-benchmark/index.html", "about/index.html", "tasks/everything/index.html",
                 "results.json", "assets/latency.svg", "assets/bench.css"]:
        assert (site / page).exists(), page


def test_every_answer_is_shown_exactly(built):
    """The raw view of each answer (and of the thinking) is its exact text, control characters made visible."""
    tmp, _ = built
    for name, answer in HOSTILE.items():
        page = Page((tmp / "site" / "tasks" / f"case-{name}" / "index.html").read_text())
        assert visible(answer) in page.codes, name
    everything = Page((tmp / "site" / "tasks" / "everything" / "index.html").read_text())
    assert visible("\n".join(HOSTILE.values())) in everything.codes
    assert visible(THINKING) in everything.codes
    assert "A harmless answer to: All cases together." in everything.codes


def test_the_rendered_view_is_markdown_made_inert(built):
    """Rendered as the model meant it: Markdown formatting yes; tags, handlers, javascript: links and fences no."""
    tmp, _ = built
    for name in HOSTILE:
        html = (tmp / "site" / "tasks" / f"case-{name}" / "index.html").read_text()
        rendered = html.split('<div class="bench-rendered">')[1].split('<div class="bench-raw">')[0]
        page = Page(rendered)
        assert {tag for tag, _ in page.tags} <= {"p", "pre", "code", "a", "em", "strong", "h4", "h5", "h6", "span",
                                                  "br", "ul", "ol", "li", "blockquote", "hr", "div", "table",
                                                  "thead", "tbody", "tr", "th", "td", "del", "s"}, name
        for tag, attrs in page.tags:
            assert set(attrs) <= {"href", "rel", "class", "title", "align", "start"}, (name, tag, attrs)
            assert not (attrs.get("href") or "").lower().startswith("javascript"), (name, attrs)
    script = (tmp / "site" / "tasks" / "case-script" / "index.html").read_text()
    assert "<p>&lt;script&gt;window.__pwned=1; document.title='pwned'&lt;/script&gt;</p>" in script


def test_no_answer_makes_a_live_tag_or_attribute(built):
    tmp, _ = built
    for name, html in pages(tmp / "site").items():
        page = Page(html)
        for tag, attrs in page.tags:
            assert not any(EVENT_ATTRIBUTE.match(a) for a in attrs), (name, tag, attrs)
            for value in attrs.values():
                assert not (value or "").strip().lower().startswith("javascript:"), (name, tag, attrs)
            assert tag not in ("iframe", "svg") or tag == "svg" and "onload" not in attrs, (name, tag)
        # The theme's five: three inline helpers, the JSON config and the bundle. Nothing else runs.
        scripts = page.all("script")
        assert len(scripts) == 5 and [a.get("id") for a in scripts].count("__config") == 1, (name, scripts)
        assert [a["src"].rsplit("/", 1)[-1].split(".")[0] for a in scripts if a.get("src")] == ["bundle"], name
        assert "pwned" not in "".join(page.texts.get("script", [])), name
        for attrs in page.all("img"):
            assert attrs.get("src", "").endswith(("assets/latency.svg", "assets/checks.svg")), (name, attrs)
        assert not any("danger" in (a.get("class") or "") for a in page.all("div")), name
        labels = page.texts.get("label", [])
        assert not any("fake tab" in t for t in labels), name


def test_no_file_is_included_and_no_template_is_evaluated(built):
    tmp, _ = built
    for name, html in pages(tmp / "site").items():
        assert "root:x:0:0" not in html, name
        assert "markdown_extensions" not in html and "custom_dir" not in html, name
    page = Page((tmp / "site" / "tasks" / "case-jinja" / "index.html").read_text())
    assert visible(HOSTILE["jinja"]) in page.codes
    assert not any("Test bench" in code or "Bench &" in code for code in page.codes)


def test_each_answer_is_in_its_own_column_or_tab(built):
    tmp, _ = built
    page = Page((tmp / "site" / "tasks" / "case-tabs" / "index.html").read_text())
    assert [a["id"] for a in page.all("input") if a.get("name") == "answers-case-tabs"] == [
        "tab-case-tabs-0", "tab-case-tabs-1"]
    assert [a.get("aria-label") for a in page.all("section") if a.get("class") == "bench-answer"] == [
        "Big Brain", "Local"]
    assert not any((a.get("name") or "").startswith("__tabbed") for a in page.all("input"))


def test_untrusted_names_details_and_reviews_are_escaped_text(built):
    tmp, _ = built
    html = (tmp / "site" / "tasks" / "everything" / "index.html").read_text()
    assert "bad | &lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "[click](javascript:window.__pwned=1)" in html
    assert "&lt;img src=x onerror=alert(1)&gt; !!! danger" in html
    assert "a check &lt;b&gt;named&lt;/b&gt; | [x](y)" in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html
    summary = (tmp / "site" / "big-brain-benchmark" / "index.html").read_text()
    title = re.search(r"<title>(.*?)</title>", summary).group(1)
    assert "&lt;img" in title and "<img" not in title


def test_a_broken_benchmark_fails_the_build_with_its_message(built, tmp_path):
    tmp, _ = built
    config = project(tmp_path)
    shutil.copy(tmp / "benchmark.yaml", tmp_path / "benchmark.yaml")
    (tmp_path / "docs").mkdir()  # committed in a real checkout
    (tmp_path / "benchmark.yaml").write_text((tmp_path / "benchmark.yaml").read_text().replace(
        "temperature: 0.3", "temperature: 9"))
    result = mkdocs_build(config, tmp_path / "site")
    assert result.returncode == 1
    assert "benchmark.yaml: 1 problem" in result.stderr
    assert "defaults.options.temperature (line" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not any((tmp_path / "docs").iterdir())


def test_with_no_model_reachable_the_real_benchmark_builds_strict_and_says_why(tmp_path, monkeypatch):
    """What `make bench` does on a fresh machine with no Ollama: run, render, mkdocs build --strict."""
    from conftest import ROOT, free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIG_BRAIN_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")
    shutil.copy(ROOT / "benchmark.yaml", tmp_path / "benchmark.yaml")
    assert bench_cli("run") == 0
    assert bench_cli("render") == 0
    built = mkdocs_build(project(tmp_path), tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    summary = Page((tmp_path / "site" / "big-brain-benchmark" / "index.html").read_text())
    text = " ".join(" ".join(parts) for parts in summary.texts.values())
    assert text.count("UNAVAILABLE: connection refused by http://127.0.0.1:") >= 2
    assert "N/A" in text
    for task in ("gitea-webhook", "evennia-architecture", "fleet-burndown-cron", "async-bug"):
        assert (tmp_path / "site" / "tasks" / task / "index.html").exists()


def test_mkdocs_serve_settles_after_a_change_instead_of_rebuilding_in_a_loop(tmp_path):
    """The hook writes only files whose content changed, so serve's watcher does not retrigger itself."""
    import os
    import subprocess
    import sys
    import time

    from conftest import ROOT, free_port

    shutil.copy(ROOT / "benchmark.yaml", tmp_path / "benchmark.yaml")
    (tmp_path / "docs").mkdir()
    config = project(tmp_path)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        serve = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-f", str(config), "-a",
                                  f"127.0.0.1:{port}"], cwd=tmp_path, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
        try:
            def builds() -> int:
                return log.read_text().count("Documentation built")

            # Edit only once the watcher runs ("Serving on" follows "Watching paths"): an edit made between
            # the first build and the watcher's start is never seen, whatever the hook does.
            deadline = time.monotonic() + 90
            while "Serving on" not in log.read_text() and time.monotonic() < deadline and serve.poll() is None:
                time.sleep(0.2)
            assert builds() == 1, log.read_text()
            time.sleep(0.5)
            text = (tmp_path / "benchmark.yaml").read_text()
            (tmp_path / "benchmark.yaml").write_text(text.replace("title: Big Brain vs local", "title: Renamed"))
            deadline = time.monotonic() + 90
            while builds() < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            # The rebuild re-renders docs/, which the watcher sees once more; that echo build changes no
            # file, so it stops there. A hook that rewrote unchanged files would rebuild forever.
            seen, quiet_since = builds(), time.monotonic()
            while time.monotonic() - quiet_since < 4 and time.monotonic() < deadline:
                time.sleep(0.2)
                if builds() != seen:
                    seen, quiet_since = builds(), time.monotonic()
            assert builds() in (2, 3), log.read_text()
            assert log.read_text().rstrip().count("0 file(s) changed") >= 1
            assert "# Renamed" in (tmp_path / "docs" / "big-brain-benchmark.md").read_text()
        finally:
            serve.terminate()
            serve.wait(timeout=30)


def test_an_offline_make_bench_leaves_git_status_clean(tmp_path):
    """A run that called nothing and got nothing new changes no committed file (no timestamp churn)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    repo = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(repo),
           "BIG_BRAIN_HOST": "http://127.0.0.1:9", "OLLAMA_HOST": "http://127.0.0.1:9", "NO_MKDOCS_2_WARNING": "1"}
    env.pop("BIG_BRAIN_TOKEN", None)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                              capture_output=True, text=True).stdout

    def make_bench() -> None:
        for args in (["-m", "generator", "run"], ["-m", "generator", "render"], ["-m", "mkdocs", "build", "--strict"]):
            done = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr

    git("init", "-q")
    make_bench()  # brings the copy to the offline state this code writes (the committed docs may be older)
    git("add", "-A")
    git("commit", "-qm", "offline state")
    make_bench()
    assert git("status", "--porcelain") == ""


def test_benchmark_strings_are_escaped_in_titles_nav_and_charts(tmp_path, monkeypatch):
    """A task title '</title><script>' does not run anywhere; a NUL in a label keeps both SVGs valid XML."""
    import xml.etree.ElementTree as ET

    from conftest import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    title = "</title><script>window.__pwned=1</script><img src=x onerror=alert(1)>"
    bench = write_bench(tmp_path / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}",
                        tasks=[{"id": "t", "title": title, "prompt": "p"}])
    data = yaml.safe_load(bench.read_text())
    data["models"][0]["label"] = "Big\x00Brain </text><script>x</script>"
    bench.write_text(yaml.safe_dump(data, sort_keys=False))
    assert bench_cli("render", "--config", str(bench)) == 0
    for chart in ("latency.svg", "checks.svg"):
        ET.fromstring((tmp_path / "docs" / "assets" / chart).read_bytes())  # valid XML
    result = mkdocs_build(project(tmp_path), tmp_path / "site")
    assert result.returncode == 0, result.stderr
    for name, html in pages(tmp_path / "site").items():
        for found in re.findall(r"<title>(.*?)</title>", html, re.S):
            assert "<" not in found, (name, found)
        page = Page(html)
        assert all(not any(EVENT_ATTRIBUTE.match(a) for a in attrs) for _, attrs in page.tags), name
        assert "pwned" not in "".join(page.texts.get("script", [])), name
        assert len(page.all("script")) == 5, name
