"""Poison: text no answer, server or answer code sends can break the cache, results.json, the pages or a run.

Every string from outside is made valid UTF-8 (a lone surrogate becomes U+FFFD and the record is flagged)
and server metadata is size-capped before anything is cached or written; a cell whose data cannot be kept
fails alone, with its reason, and every other cell is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import diskcache
import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench
from site_helpers import mkdocs_build, project

from generator import cache as cache_mod
from generator import config, plan, results
from generator.records import Answer, Failure, ModelDetails
from generator.safety import cap, clean_text, clean_tree, terminal_text

BAD = "\ud800"  # a lone surrogate: not encodable as UTF-8
HUGE = "Q" * 5_000_000
CODE_ANSWER = "```python\ndef add(a, b):\n    raise ValueError('\\ud800 from answer code')\n```\n"
CODE_CHECK = {"type": "python", "code": "from answer import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"}


def _all_files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_clean_text_replaces_what_utf8_cannot_hold():
    assert clean_text("plain ünïcode 🙂") == ("plain ünïcode 🙂", False)
    assert clean_text(f"a{BAD}b\udfff") == ("a\ufffdb\ufffd", True)
    assert clean_text("nul\x00 and esc\x1b stay") == ("nul\x00 and esc\x1b stay", False)


def test_records_clean_every_string_and_say_so():
    answer = Answer(text=f"x{BAD}", thinking=BAD, latency_ms=1, key="k", model_id="m", task_id="t",
                    digest=BAD, server_version=BAD)
    assert answer.text == "x\ufffd" and answer.digest == "\ufffd" and answer.text_replaced
    assert Answer(text="fine", latency_ms=1, key="k", model_id="m", task_id="t").text_replaced is False
    failure = Failure(key="k", model_id="m", task_id="t", reason=f"HTTP 500: {BAD}" + "x" * 1000)
    assert failure.text_replaced and len(failure.reason) <= 300
    details = ModelDetails(family=HUGE, digest=f"sha256:{BAD}")
    assert len(details.family) <= 256 and details.digest == "sha256:\ufffd" and details.text_replaced


def test_cap_and_terminal_text():
    assert cap("abc", 10) == "abc" and cap("x" * 20, 10) == "x" * 9 + "…"
    assert terminal_text("a\x1b[2Jb\x1b]0;title\x07c\rd\x00e\u202ef\nnext\tTAB") == \
        "a\\x1b[2Jb\\x1b]0;title\\x07c\\x0dd\\x00e\\u202ef\nnext\tTAB"


def test_poison_at_every_input_is_reported_per_cell_and_the_rest_is_kept(isolated, capsys):
    tasks = [{"id": "prose", "title": "Prose", "prompt": "Say hi."},
             {"id": "code", "title": "Code", "prompt": "Write add(a, b).", "checks": [CODE_CHECK]}]
    poisoned = [
        FakeModel("p-answer", answer=f"answer {BAD} text", thinking=f"thinking {BAD}"),
        FakeModel("p-digest", digest=f"sha256:{BAD}"),
        FakeModel("p-show", family=f"fam{BAD}", parameter_size=HUGE, quantization_level=f"\x1b[2J{BAD}"),
        FakeModel("p-error", fault="status", fault_status=500,
                  fault_body='{"error":"boom \\ud800 \\u001b[2J\\u001b]0;pwned\\u0007 [bold]x[/bold] :skull: end"}'),
        FakeModel("clean", answer=CODE_ANSWER),  # last on the poisoned host: its thread must reach it
    ]
    with FakeOllama(poisoned) as host, FakeOllama([FakeModel("v-model")], version=f"0.1{BAD}") as versioned, \
            FakeOllama([FakeModel("judge", answer=f"no verdict {BAD} here")]) as judge_host:
        bench = write_bench(isolated / "benchmark.yaml", big_host=host.url, tasks=tasks)
        data = yaml.safe_load(bench.read_text())
        # think only where the model can (Ollama answers 400 otherwise, and the probe says so first).
        data["models"] = [{"id": m.tag, "model": m.tag, "host": host.url, "think": bool(m.thinking)}
                          for m in poisoned]
        data["models"] += [{"id": "v-model", "model": "v-model", "host": versioned.url},
                           {"id": "judge", "model": "judge", "host": judge_host.url}]
        data["judge"] = {"model": "judge"}
        data["defaults"]["retries"] = 0
        bench.write_text(yaml.safe_dump(data, sort_keys=False))

        assert bench_cli("run", "--config", str(bench)) == 0
        logs = capsys.readouterr()
        assert logs.out.strip().endswith("14 cells: 0 cached, 12 called, 2 failed")
        assert "\x1b" not in logs.out + logs.err  # shown, not obeyed; nor read as markup or emoji codes
        assert "failed prose × p-error: HTTP 500 from " in logs.err
        assert "boom \ufffd \\x1b[2J\\x1b]0;pwned\\x07 [bold]x[/bold] :skull: end" in logs.err

        store = cache_mod.AnswerCache.open(isolated / "cache")
        cells = {(c.task_id, c.model_id): c for c in plan.make_plan(config.load(bench), store)}
        try:
            for (task, model), cell in cells.items():
                expected = "failed" if model == "p-error" else "cached"
                assert cell.state == expected, (task, model, cell.reason)
                if model == "p-error":
                    assert cell.reason == (f"HTTP 500 from {host.url}: boom \ufffd \x1b[2J\x1b]0;pwned\x07 "
                                           f"[bold]x[/bold] :skull: end")
                    assert store.failure(cell.key).text_replaced
            flagged = {m for (t, m), c in cells.items() if t == "prose" and store.answer(c.key)
                       and store.answer(c.key).text_replaced}
            assert flagged == {"p-answer", "judge"}
            assert all(store.probe(m).details.text_replaced for m in ("p-digest", "p-show", "v-model"))
            assert store.probe("p-show").details.text_replaced
            assert len(store.probe("p-show").details.parameter_size) <= 256
            # A ValueError('\ud800') raised by answer code reaches the check detail as valid text.
            code_checks = store.checks
            assert code_checks is not None
        finally:
            store.close()

        assert bench_cli("status", "--config", str(bench)) == 0
        assert bench_cli("render", "--config", str(bench)) == 0
        built = mkdocs_build(project(isolated), isolated / "site")
        assert built.returncode == 0, built.stderr

        page = (isolated / "docs" / "tasks" / "prose.md").read_text(encoding="utf-8")
        assert page.count('<p class="admonition-title">Replaced: the answer contained invalid text</p>') == 2  # p-answer, judge
        raw = (isolated / "docs" / "results.json").read_text(encoding="utf-8")
        assert len(raw) < 1_000_000  # a 5 MB metadata string does not reach the record
        document = json.loads(raw)
        loaded = results.load(isolated / "docs")
        assert len(loaded.answers) == 12 and len(loaded.failures) == 2
        assert clean_tree(document) == (document, False)
        replaced = {(t["id"], c["model"]) for t in document["tasks"] for c in t["cells"] if c["text_replaced"]}
        assert replaced == {(t, m) for t in ("prose", "code") for m in ("p-answer", "judge")}
        assert {m["id"] for m in document["models"] if m["details"] and m["details"]["text_replaced"]} >= \
            {"p-digest", "p-show", "v-model"}  # no lone surrogate, not even as a JSON escape
        details = " ".join(c["checks"][0]["detail"] for t in document["tasks"] if t["id"] == "code"
                           for c in t["cells"] if c["checks"])
        assert "\ufffd from answer code" in details
        with diskcache.Cache(str(isolated / "cache")) as raw_cache:
            judged = [json.loads(raw_cache[k]) for k in raw_cache.iterkeys() if k.startswith("judge:")]
        assert judged and all(j["rationale"] == "no verdict \ufffd here" for j in judged)
        for path, data in {**_all_files(isolated / "docs"), **_all_files(isolated / "cache"),
                           **_all_files(isolated / "site")}.items():
            if path.suffix in (".md", ".json", ".html", ".svg", ".csv"):
                data.decode("utf-8")  # strict: every written text is valid UTF-8

        # A second run with nothing to call works, and keeps every cell.
        assert bench_cli("run", "--config", str(bench)) == 0
        assert "14 cells: 12 cached, 0 called, 2 failed" in capsys.readouterr().out
