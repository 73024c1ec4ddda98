"""Render: docs/ written from the cache (then results.json), deterministic, honest about what did not answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import bench_cli, free_port, write_bench

from generator import cache as cache_mod
from generator import config
from generator.records import sha256
from generator.render import fenced, inline, render, visible

TASKS = [
    {"id": "sum", "title": "Sum two numbers", "prompt": "Write add(a, b) in Python.",
     "checks": [{"type": "python", "code": "import answer\n\ndef test_add():\n    assert answer.add(2, 3) == 5\n",
                 "critical": True},
                {"type": "contains", "value": "def add"}]},
    {"id": "poem", "title": "A short poem", "prompt": "Write a poem about caches."},
]


def answers(prompt: str) -> str:
    return "def add(a, b):\n    return a + b\n" if "add" in prompt else "Caches remember\nwhat servers forget.\n"


def run_and_render(bench: Path, docs: Path | str = "docs") -> None:
    assert bench_cli("run", "--config", str(bench), "--docs-dir", str(docs)) == 0
    assert bench_cli("render", "--config", str(bench), "--docs-dir", str(docs)) == 0


def column(task: str, label: str) -> str:
    """One model's answer column of a task page (the HTML block of the Answers section)."""
    return task.split(f'<section class="bench-answer" aria-label="{label}">')[1].split("</section>")[0]


def snapshot(docs: Path) -> dict[str, bytes]:
    return {p.relative_to(docs).as_posix(): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}


def render_again(bench: Path, docs: Path) -> list[Path]:
    store = cache_mod.AnswerCache.open(cache_mod.default_dir())
    try:
        return render(config.load(bench), store, docs)
    finally:
        store.close()


def test_render_writes_summary_task_pages_and_results(server, isolated, capsys):
    server.models["gemma3:4b"].answer = lambda p: "def add(a, b):\n    pass\n" if "add" in p else "Caches."
    server.models["gemma3:27b"].answer = answers
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    assert "rendered docs: 12 file(s) changed" in capsys.readouterr().out
    docs = isolated / "docs"
    assert set(snapshot(docs)) >= {"about.md", "assets/bench.css", "assets/latency.svg", "big-brain-benchmark.md",
                                      "index.md", "results.json", "tasks/poem.md", "tasks/sum.md", "history.md",
                                      "comparison.csv", "latency.csv"}
    summary = (docs / "big-brain-benchmark.md").read_text()
    assert summary.startswith("---\nhide:\n  - navigation\n---\n# Test bench\n")
    row = (f"| Big Brain | ok | gemma3:27b | {inline(server.url)} | test GPU | 27\\.4B, Q4\\_K\\_M | ")
    assert row in summary and "| 0\\.12\\.3 | bbbbbbbbbbbb |" in summary
    assert row in summary
    assert "| Task | Big Brain | Local | Winner |" in summary
    assert ("| [Sum two numbers](tasks/sum.md) | [2/2 checks · " in summary
            and "| [1/2 checks · " in summary and "| **Big Brain** · objectively clear |" in summary)
    assert "| [A short poem](tasks/poem.md) | [answered · " in summary
    assert "**Objectively clear** on [Sum two numbers](tasks/sum.md): Big Brain wins." in summary
    assert "![Latency per task and model](assets/latency.svg)" in summary
    assert "| **Total** |" in summary and "Fastest: **" in summary
    assert "temperature 0\\.3, seed 42, num\\_predict 256" in summary

    task = (docs / "tasks" / "sum.md").read_text()
    big = column(task, "Big Brain")
    assert "Local" in column(task, "Local")
    # Rendered as the model meant it, and the exact raw text behind the toggle.
    assert '<div class="bench-raw"><pre><code>def add(a, b):\n    return a + b\n</code></pre></div>' in big
    assert '<input type="checkbox" class="bench-raw-toggle"' in big
    assert '!!! success "Winner: Big Brain \\(objectively clear\\)"' in task
    assert "| python tests | executed | critical | 1 | pass | FAIL |" in task
    assert "| contains &quot;def add&quot; | weak |  | 1 | pass | pass |" in task
    assert "    | Big Brain | pass | " in task
    assert "    | Local | FAIL | 0 of 1 tests pass; test\\_add: assertion failed: " in task

    svg = (docs / "assets" / "latency.svg").read_text()
    assert svg.startswith("<?xml") and "<dc:date>" not in svg and "Sum two numbers" in svg

    data = json.loads((docs / "results.json").read_text())
    assert data["schema_version"] == 1 and data["benchmark"]["title"] == "Test bench"
    big = data["models"][0]
    assert big["status"] == "ok" and big["host"] == server.url
    assert big["details"]["parameter_size"] == "27.4B" and big["digest"] == "b" * 64
    sum_task = data["tasks"][0]
    assert sum_task["winner"] == "big-brain" and sum_task["decided_by"] == "checks" and sum_task["objectively_clear"]
    cell = sum_task["cells"][0]
    assert cell["answer"] == answers("add") and cell["output_sha256"] == sha256(answers("add"))
    assert cell["key"] and cell["latency_ms"] > 0 and cell["ttft_ms"] is not None and cell["eval_count"]
    assert cell["done_reason"] == "stop" and cell["score"] == 1.0 and len(cell["checks"]) == 2
    assert cell["created_at"] == data["generated_at"] or cell["created_at"] <= data["generated_at"]
    assert sum_task["cells"][1]["score"] == 0.5


def test_rendering_twice_is_byte_identical_and_changes_nothing(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    first = snapshot(docs)
    mtimes = {p: p.stat().st_mtime_ns for p in docs.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert bench_cli("render", "--config", str(bench)) == 0
    assert "rendered docs: 0 file(s) changed" in capsys.readouterr().out
    assert snapshot(docs) == first
    assert {p: p.stat().st_mtime_ns for p in docs.rglob("*") if p.is_file()} == mtimes


def test_without_the_cache_the_committed_results_render_the_same_site(server, isolated):
    server.models["gemma3:27b"].answer = answers
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    first = snapshot(docs)
    shutil.rmtree(isolated / "cache")
    assert render_again(bench, docs) == []
    assert snapshot(docs) == first


def test_the_date_shown_is_the_run_date_not_the_render_date(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    data = json.loads((isolated / "docs" / "results.json").read_text())
    newest = max(c["created_at"] for t in data["tasks"] for c in t["cells"])
    assert data["generated_at"] == newest
    day, clock = newest[:10], newest[11:16]
    summary = (isolated / "docs" / "big-brain-benchmark.md").read_text()
    assert f"**Run date:** {day.replace('-', chr(92) + '-')} {clock} UTC" in summary


def test_no_server_shows_both_models_unavailable_and_no_winner(isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}", tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    summary = (docs / "big-brain-benchmark.md").read_text()
    assert summary.count("| UNAVAILABLE: connection refused by http://127\\.0\\.0\\.1:") == 2
    assert ("| [UNAVAILABLE](tasks/sum.md) | [UNAVAILABLE](tasks/sum.md) | N/A: Big Brain and Local did not "
            "answer |") in summary
    assert "**Big Brain** was UNAVAILABLE: connection refused" in summary
    task = (docs / "tasks" / "sum.md").read_text()
    assert '!!! warning "N/A: not every model answered"' in task
    assert task.count('<p class="admonition-title">UNAVAILABLE</p><p>connection refused by http://127.0.0.1:') == 2
    data = json.loads((docs / "results.json").read_text())
    assert [m["status"] for m in data["models"]] == ["unavailable", "unavailable"]
    assert all(t["winner"] is None and t["reason"].startswith("N/A: ") for t in data["tasks"])
    cell = data["tasks"][0]["cells"][0]
    assert cell["status"] == "failed" and cell["failure_kind"] and cell["failed_at"] and cell["answer"] is None
    assert "No answers yet" in (docs / "assets" / "latency.svg").read_text()


def test_never_run_cells_say_not_run_yet(isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host="http://127.0.0.1:9", tasks=TASKS)
    assert bench_cli("render", "--config", str(bench)) == 0
    task = (isolated / "docs" / "tasks" / "poem.md").read_text()
    assert task.count('<p class="admonition-title">Not run yet</p>') == 2
    assert "not run yet: run &#x27;make bench&#x27;" in task
    assert "**Run date:** not run yet" in (isolated / "docs" / "big-brain-benchmark.md").read_text()


def test_hidden_hosts_appear_nowhere_in_docs(server, isolated):
    dead = f"http://127.0.0.1:{free_port()}"
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, local_host=dead, tasks=TASKS,
                        extra={"report": {"show_hosts": False}})
    run_and_render(bench)
    docs = isolated / "docs"
    summary = (docs / "big-brain-benchmark.md").read_text()
    assert "| Big Brain | ok | gemma3:27b | redacted | test GPU |" in summary
    assert "| Local | UNAVAILABLE: connection refused by redacted" in summary
    assert "UNAVAILABLE: connection refused by redacted" in summary
    for name, data in snapshot(docs).items():
        text = data.decode()
        for host in (server.url, dead, "127.0.0.1", dead.rsplit(":", 1)[1]):
            assert host not in text and inline(host) not in text, f"{host} in docs/{name}"
    hosts = [m["host"] for m in json.loads((docs / "results.json").read_text())["models"]]
    assert hosts == ["redacted", "not recorded: no answer yet"]  # local never answered: no host on record


def test_cut_and_empty_answers_are_flagged(server, isolated):
    server.models["gemma3:4b"].done_reason = "length"
    server.models["gemma3:27b"].answer = lambda p: "" if "poem" in p else answers(p)
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    task = (docs / "tasks" / "poem.md").read_text()
    local = column(task, "Local")
    assert '<p class="admonition-title">Cut: the answer hit the token limit</p>' in local
    assert "done_reason is &#x27;length&#x27;" in local and "(num_predict 256)" in local
    big = column(task, "Big Brain")
    assert '<p class="admonition-title">Empty: the model returned no text</p>' in big and "(no text)" in big
    summary = (docs / "big-brain-benchmark.md").read_text()
    cut = inline("cut at the token limit (done_reason 'length')")
    assert (f"Answers {cut}: "
            f"Local on [Sum two numbers](tasks/sum.md), Local on [A short poem](tasks/poem.md).") in summary
    assert "Answers empty: Big Brain on [A short poem](tasks/poem.md)." in summary
    assert "· empty](tasks/poem.md)" in summary and "· cut](tasks/poem.md)" in summary


def test_thinking_is_shown_in_a_collapsed_block(server, isolated):
    server.models["gemma3:4b"].thinking = "First, <b>consider</b> the caches."
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS[1:])
    data = yaml.safe_load(bench.read_text())
    data["models"][1]["think"] = True
    bench.write_text(yaml.safe_dump(data))
    run_and_render(bench)
    task = (isolated / "docs" / "tasks" / "poem.md").read_text()
    assert ("<details class=\"note\"><summary>Thinking (shown, never graded)</summary>"
            "<pre><code>First, &lt;b&gt;consider&lt;/b&gt; the caches.</code></pre></details>") in column(task, "Local")
    assert "Thinking" not in column(task, "Big Brain")


def test_reviews_are_shown_and_a_review_of_an_older_answer_is_stale(server, isolated):
    server.models["gemma3:27b"].answer = answers
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS[1:])
    poem = answers("poem")
    (isolated / "reviews.yaml").write_text(yaml.safe_dump([
        {"task": "poem", "model": "big-brain", "score": 4, "label": "good | <i>fine</i>", "issues": ["too short"],
         "reviewer": "ana", "date": "2026-01-30", "output_sha256": sha256(poem)},
        {"task": "poem", "model": "local", "score": 5, "label": "great", "issues": [],
         "reviewer": "ana", "date": "2026-01-30", "output_sha256": sha256("an older answer")},
    ]))
    run_and_render(bench)
    task = (isolated / "docs" / "tasks" / "poem.md").read_text()
    assert "**Big Brain:** 4/5, good \\| &lt;i&gt;fine&lt;/i&gt; \\(by ana, 2026\\-01\\-30\\)\n" in task
    assert "\n- too short\n" in task
    assert '!!! warning "Stale review of Local: the answer changed since it was reviewed; not applied"' in task
    summary = (isolated / "docs" / "big-brain-benchmark.md").read_text()
    assert "Stale reviews (the answer changed since it was reviewed; not applied): Local on" in summary


def test_pages_of_removed_tasks_are_deleted(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    run_and_render(bench)
    docs = isolated / "docs"
    assert len(list((docs / "tasks").glob("*.md"))) == 4
    data = yaml.safe_load(bench.read_text())
    data["tasks"] = data["tasks"][:2]
    bench.write_text(yaml.safe_dump(data))
    changed = render_again(bench, docs)
    assert sorted(p.name for p in (docs / "tasks").glob("*.md")) == ["task-1.md", "task-2.md"]
    assert docs / "tasks" / "task-3.md" in changed and docs / "tasks" / "task-4.md" in changed


# ------------------------------------------------------------------------------------------ the escapers


@pytest.mark.parametrize("text", ["plain", "```", "a ```` b\n~~~~~~", "`" * 40, "~~~\n```\n"])
def test_the_fence_is_longer_than_any_run_of_backticks_or_tildes(text):
    block = fenced(text, 4)
    opening = block.split("\n")[0].strip().split(" ")[0]
    longest = max([len(r) for r in __import__("re").findall(r"`+|~+", text)] + [2])
    assert len(opening) == longest + 1 and block.endswith("\n    " + opening)
    assert all(line.startswith("    ") or line == "" for line in block.split("\n"))


def test_inline_text_cannot_make_markdown_or_html():
    text = 'a|b <script>x</script> [l](javascript:1) *e* `c` {: onclick="x"}\n!!! danger \x02wzxhzdk:0\x03'
    out = inline(text)
    assert "\n" not in out and "<" not in out and "|" not in out.replace("\\|", "")
    assert out == ("a\\|b &lt;script&gt;x&lt;/script&gt; \\[l\\]\\(javascript:1\\) \\*e\\* \\`c\\` "
                   "\\{: onclick=&quot;x&quot;\\} \\!\\!\\! danger ␂wzxhzdk:0␃")


def test_control_characters_become_control_pictures():
    assert visible("a\tb\nc\x00\x01\x02\x03\x1b\r\x7f\ud800") == "a\tb\nc␀␁␂␃␛␍␡\ufffd"


def test_the_judge_rationale_is_shown_as_model_graded_and_kept_in_results(server, isolated):
    def big(prompt: str) -> str:
        if "=== Answer A ===" not in prompt:
            return "Seven."
        first = prompt.split("=== Answer A ===")[1].split("=== End of answer A ===")[0]
        vote = "A" if "Seven" in first else "B"
        return f"The prime one wins. <script>window.__pwned=1</script>\n```\nVERDICT: {vote}"

    server.models["gemma3:27b"].answer = big
    server.models["gemma3:4b"].answer = "Nine."
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, extra={"judge": {"model": "big-brain"}},
                        tasks=[{"id": "t", "title": "T", "prompt": "Name a prime.", "reference": "Any prime."}])
    run_and_render(bench)
    docs = isolated / "docs"
    task = (docs / "tasks" / "t.md").read_text()
    assert "Decided by: **LLM judge \\(model\\-graded\\)**" in task
    assert '??? quote "LLM judge rationale \\(model\\-graded, by big\\-brain\\)"\n\n    ```` text\n' in task
    assert "    big-brain shown first: The prime one wins. <script>window.__pwned=1</script>\n    ```\n" in task
    assert "## Reference" in task and "Any prime." in task
    data = json.loads((docs / "results.json").read_text())["tasks"][0]
    assert data["winner"] == "big-brain" and data["decided_by"] == "judge" and data["judge"]["key"]
    first = snapshot(docs)
    shutil.rmtree(isolated / "cache")
    assert render_again(bench, docs) == [] and snapshot(docs) == first


def test_a_fresh_clone_reuses_the_committed_check_results_instead_of_running_them(server, isolated):
    server.models["gemma3:27b"].answer = "```python\ndef add(a, b):\n    return a + b\n```\n"
    slow = {"type": "python", "function": "add",
            "code": "import random, time\nimport answer\n\ndef test_add():\n"
                    "    time.sleep(random.uniform(0.05, 0.15))\n    assert answer.add(2, 3) == 5\n"}
    tasks = [{**TASKS[0], "checks": [*TASKS[0]["checks"], slow]}]
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
    run_and_render(bench)
    committed = (isolated / "docs" / "results.json").read_text()
    shutil.rmtree(isolated / "cache")
    render_again(bench, isolated / "docs")
    assert (isolated / "docs" / "results.json").read_text() == committed  # same durations: not run again
    data = json.loads(committed)["tasks"][0]["cells"][0]
    assert [c["passed"] for c in data["checks"]] == [True, True, True] and data["checks"][2]["duration_ms"] >= 50
    # A changed check is not answered by the old results: it runs.
    tasks[0]["checks"][2]["code"] = tasks[0]["checks"][2]["code"].replace("== 5", "== 6")
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
    render_again(bench, isolated / "docs")
    fresh = json.loads((isolated / "docs" / "results.json").read_text())["tasks"][0]["cells"][0]
    assert [c["passed"] for c in fresh["checks"]] == [True, True, False]


def test_nav_lists_tasks_up_to_a_limit_and_keeps_the_build_linear(isolated):
    from generator.render import NAV_TASKS_MAX, nav

    def bench_with(n):
        tasks = "".join(f"  - {{id: t{i}, title: 'T{i} <b>', prompt: p}}\n" for i in range(n))
        return config.parse(f"title: T\nmodels: [{{id: a, model: m}}]\ntasks:\n{tasks}", "b.yaml", {})

    small = nav(bench_with(2), isolated)
    # No '<' at all: Material passes nav titles through striptags, which turns '&lt;' back into '<'.
    assert small[2] == {"Tasks": [{"T0 ‹b›": "tasks/t0.md"}, {"T1 ‹b›": "tasks/t1.md"}]}
    large = nav(bench_with(NAV_TASKS_MAX + 1), isolated)
    assert all("Tasks" not in entry for entry in large if isinstance(entry, dict))


@pytest.mark.parametrize("name", sorted(__import__("site_helpers").HOSTILE))
def test_a_hostile_answer_rendered_as_markdown_stays_inert(name):
    """The rendered view: sanitized HTML with no tag, handler or URL of the answer's own, and no fence or
    whitespace that Python-Markdown would act on before it sets the block aside."""
    import re

    from site_helpers import HOSTILE

    from generator.render.answers import raw, rendered

    for html in (rendered(HOSTILE[name]), raw(HOSTILE[name])):
        assert not re.search(r"<(script|iframe|svg|img|style|input|form|object|embed)\b", html, re.I), html
        tags = "".join(re.findall(r"<[^>]*>", html))
        assert not re.search(r"\son\w+\s*=", tags, re.I) and "javascript:" not in tags.lower(), tags
        assert "`" not in html and "~" not in html and "\t" not in html
        assert not re.search(r"^[ ]+$", html, re.M) and "\x02" not in html and "\x03" not in html


def test_a_render_with_nothing_changed_makes_no_page_and_a_touched_docs_file_is_restored(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    before = snapshot(docs)
    assert render_again(bench, docs) == []
    (docs / "tasks" / "sum.md").write_text("edited by hand")
    (docs / "index.md").unlink()
    assert sorted(p.name for p in render_again(bench, docs)) == ["index.md", "sum.md"]
    assert snapshot(docs) == before
    # A template change is an input too.
    shutil.copytree(Path(__file__).resolve().parent.parent / "site_src", isolated / "site_src")
    template = isolated / "site_src" / "templates" / "index.md.j2"
    template.write_text(template.read_text() + "\nA new line.\n")
    assert [p.name for p in render_again(bench, docs)] == ["index.md"]


def test_check_status_evidence_and_decided_by_read_newer_records_defensively():
    from types import SimpleNamespace as NS

    from generator.render.formats import check_status, decided_by, evidence_of

    assert check_status(NS(passed=False, status="error")) == "error"
    assert check_status(NS(passed=True)) == "pass" and check_status(NS(passed=False)) == "FAIL"
    assert [evidence_of(t) for t in ("python", "shell", "rubric", "calls", "regex")] == [
        "executed", "executed", "model-graded", "weak", "weak"]
    assert decided_by(NS(winner="a", decided_by="checks", evidence="static")) == \
        "static or lexical checks (weak evidence)"
    assert decided_by(NS(winner="a", decided_by="checks")) == "objective checks"
    assert decided_by(NS(winner=None, decided_by="none")) == "nothing: not every model answered"


def test_the_isolation_of_executed_checks_is_part_of_the_evidence(server, isolated):
    from generator.sandbox import isolation

    server.models["gemma3:4b"].answer = server.models["gemma3:27b"].answer = answers
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    run_and_render(bench)
    docs = isolated / "docs"
    summary = isolation().summary
    checks = json.loads((docs / "results.json").read_text())["tasks"][0]["cells"][0]["checks"]
    assert [(c["type"], c["isolation"]) for c in checks] == [("python", summary), ("contains", None)]
    task = (docs / "tasks" / "sum.md").read_text()
    assert task.count(str(inline(summary))) == 1
    assert f"Executed checks (python, shell) ran the answers' code under: {inline(summary)}." in task
    assert "ran the answers' code under" not in (docs / "tasks" / "poem.md").read_text()
    method = (docs / "big-brain-benchmark.md").read_text().split("## Method", 1)[1]
    assert f"**Executed tests** (python and shell checks) ran the answers' code under: {inline(summary)}." in method


def test_results_json_keeps_the_whole_verdict_and_counts_only_checks_that_ran(server, isolated):
    from generator.records import Verdict

    server.models["gemma3:4b"].answer = lambda p: "def add(a, b):\n    pass\n" if "add" in p else "Caches."
    server.models["gemma3:27b"].answer = answers
    tasks = [{**TASKS[0], "checks": [*TASKS[0]["checks"], {"type": "rubric", "must": ["adds"]}]}]
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
    run_and_render(bench)
    docs = isolated / "docs"
    entry = json.loads((docs / "results.json").read_text())["tasks"][0]
    verdict_fields = set(Verdict.model_fields) - {"task_id"}
    assert verdict_fields <= set(entry), verdict_fields - set(entry)
    assert (entry["evidence"], entry["weak"], entry["self_preference"]) == ("tests", False, False)
    # The rubric has no judge model: it could not run, and is not counted as a failed check.
    assert [c["status"] for c in entry["cells"][0]["checks"]] == ["pass", "pass", "error"]
    summary = (docs / "big-brain-benchmark.md").read_text()
    assert "| [Sum two numbers](tasks/sum.md) | [2/2 checks, 1 could not run · " in summary
    assert "| [1/2 checks, 1 could not run · " in summary
    assert "| Big Brain | answered | 2/2 checks, 1 could not run \\(score 100%\\) |" in (docs / "tasks" / "sum.md").read_text()
