"""The answer corpus (tests/answers/<task>/): every pair of answers whose verdict is constrained, in both
seatings, through the pipeline: `bench run` against the fake Ollama server, then the portable record `bench render`
writes (docs/results.json, made by the same calls, without writing the pairs' pages), and the verdicts read
back from it.

Rules (expected.yaml grades each answer good or weak):
- good vs weak: the good answer wins; except that a weak answer marked `separable_without_judge: false` (its
  defect is a fluent invention in prose that only the model-graded rubric can see, with `needs_judge_why`
  saying why) may instead end as a tie whose reason says a judge is needed; it never wins. The corpus runs
  without a judge; such exemptions are few (at most MAX_NEEDS_JUDGE per task) and each is justified;
- good vs good: never "objectively clear" (a tie or a weak-evidence winner is fine);
- weak vs weak: no constraint, so not run.

To stay fast, one benchmark per task holds one copy of the real task per ordered pair, told apart by a
marker at the end of the prompt that the fake server maps to the pair's two answers; check results are
cached by (answer hash, checks), so each distinct answer is checked once (in parallel, before the run, the
way `bench run` would check it; the run then finds them cached).
"""

from __future__ import annotations

import itertools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench

from generator import cache as cache_mod
from generator import config
from generator.evaluate import checks_key, objective_checks
from generator import results as results_mod
from generator.records import sha256
from generator.render.results_json import results_file
from generator.render.views import Redactor
from generator.report import gather

HERE = Path(__file__).parent
CORPUS = HERE / "answers"
TASKS = {t["id"]: t for t in yaml.safe_load((HERE.parent / "benchmark.yaml").read_text(encoding="utf-8"))["tasks"]}
MARKER = re.compile(r"\(corpus pair (\d+)\)\s*$")
MAX_NEEDS_JUDGE = 3
NEEDS_JUDGE = "a judge is needed"


def _expected(task_id: str) -> dict[str, dict]:
    expected = yaml.safe_load((CORPUS / task_id / "expected.yaml").read_text(encoding="utf-8"))["answers"]
    return {name: entry for name, entry in expected.items() if (CORPUS / task_id / name).exists()}


def _grades(task_id: str) -> dict[str, str]:
    return {name: entry["grade"] for name, entry in _expected(task_id).items()}


def _needs_judge(task_id: str) -> set[str]:
    """Weak answers only a judge can separate from a good one (see the module's rules)."""
    return {name for name, entry in _expected(task_id).items() if entry.get("separable_without_judge") is False}



def _pairs(grades: dict[str, str]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in itertools.permutations(sorted(grades), 2) if "good" in (grades[a], grades[b])]


def _corpus_tasks() -> list[str]:
    return [t for t in TASKS if (CORPUS / t / "expected.yaml").exists()]


@pytest.mark.slow
@pytest.mark.parametrize("task_id", _corpus_tasks())
def test_corpus_verdicts(task_id, isolated):
    grades = _grades(task_id)
    texts = {name: (CORPUS / task_id / name).read_text(encoding="utf-8") for name in grades}
    pairs = _pairs(grades)
    real = TASKS[task_id]
    tasks = [{**real, "id": f"{task_id}-{i}", "prompt": real["prompt"].rstrip("\n") + f"\n\n(corpus pair {i})\n"}
             for i in range(len(pairs))]

    def seat(position: int):
        return lambda prompt: texts[pairs[int(MARKER.search(prompt).group(1))][position]]

    with FakeOllama([FakeModel("gemma3:27b", answer=seat(0)), FakeModel("gemma3:4b", answer=seat(1))]) as server:
        path = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks,
                           extra={"defaults": {"options": {"temperature": 0}, "timeout_s": 30, "warm_up": False,
                                               "concurrency_per_host": 4}})
        _check_each_answer_once(config.load(path), texts, isolated / "cache")
        assert bench_cli("run", "--config", str(path)) == 0
    verdicts = {t["id"]: t for t in json.loads(_results_json(path, isolated))["tasks"]}

    needs_judge = _needs_judge(task_id)
    wrong, clear = [], []
    for i, (a, b) in enumerate(pairs):
        verdict = verdicts[f"{task_id}-{i}"]
        for good, weak, seat in ((a, b, "big-brain"), (b, a, "local")):
            if grades[good] != "good" or grades[weak] != "weak" or verdict["winner"] == seat:
                continue
            if weak in needs_judge and verdict["winner"] == "tie" and NEEDS_JUDGE in verdict["reason"]:
                continue  # honest: without a judge nothing can tell them apart, and the page says so
            wrong.append(f"{good} (good) vs {weak}: {verdict['winner']}: {verdict['reason'][:300]}")
        if grades[a] == grades[b] == "good" and verdict["objectively_clear"]:
            clear.append(f"{a} vs {b}: {verdict['reason'][:300]}")
    assert (wrong, clear) == ([], []), f"{len(wrong)} wrong winners, {len(clear)} false objectively clear"
    assert len(pairs) >= 2 * sum(g == "good" for g in grades.values())


@pytest.mark.parametrize("task_id", _corpus_tasks())
def test_needs_a_judge_exemptions_are_few_and_justified(task_id):
    expected = _expected(task_id)
    exempt = _needs_judge(task_id)
    assert len(exempt) <= MAX_NEEDS_JUDGE, sorted(exempt)
    for name in exempt:
        assert expected[name]["grade"] == "weak" and len(expected[name].get("needs_judge_why", "")) > 40, name


def _results_json(path: Path, isolated: Path) -> str:
    """docs/results.json as `bench render` makes it (gather, then the portable record), without writing the
    hundreds of pages of the pairs' tasks: rendering them is test_render's and test_site's business."""
    bench = config.load(path)
    store = cache_mod.AnswerCache.open(isolated / "cache")
    try:
        report = gather(bench, store, results_mod.load(isolated / "docs"))
        return results_file(report, Redactor(bench, report)).to_json()
    finally:
        store.close()


def _check_each_answer_once(bench: config.Benchmark, texts: dict[str, str], cache_dir: Path) -> None:
    """Check every distinct answer once, in parallel, and cache the results where evaluate looks for them."""
    task = bench.tasks[0]
    store = cache_mod.AnswerCache.open(cache_dir)
    try:
        with ThreadPoolExecutor(4) as pool:
            results = dict(zip(texts, pool.map(lambda name: objective_checks(task, texts[name]), texts)))
        # A check that could not run (a sandbox starved on a loaded machine) is tried again, alone, as
        # evaluate does: such a result is never cached there.
        for name in [n for n, rs in results.items() if not all(r.scored for r in rs)]:
            results[name] = objective_checks(task, texts[name])
        for name, text in texts.items():
            store.put_checks(checks_key(task, sha256(text)), results[name])
    finally:
        store.close()
