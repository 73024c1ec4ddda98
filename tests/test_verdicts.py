"""Verdicts rest on evidence: checks first, then current human reviews, then a judge whose two orders agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench

from generator import cache as cache_mod
from generator import config, results
from generator.decide import decide
from generator.evaluate import Evidence
from generator.judge import parse_verdict
from generator.records import Answer, CellResult, CheckResult, Review
from generator.report import gather

HERE = Path(__file__).parent
TASKS = yaml.safe_load((HERE.parent / "benchmark.yaml").read_text(encoding="utf-8"))["tasks"]


def _sample(task_id: str, kind: str) -> str:
    return (HERE / "samples" / task_id / f"{kind}.md").read_text()


def _answering(samples: dict[str, str]):
    """An answer function for FakeModel: the sample of the task whose prompt was sent."""
    by_prompt = {t["prompt"].strip(): t["id"] for t in TASKS}
    return lambda prompt: samples[by_prompt[prompt.strip()]]


def _run_four_tasks(isolated, big: str, small: str):
    good = {t["id"]: _sample(t["id"], "good") for t in TASKS}
    bad = {t["id"]: _sample(t["id"], "bad") for t in TASKS}
    pick = {"good": good, "bad": bad}
    with FakeOllama([FakeModel("gemma3:27b", answer=_answering(pick[big])),
                     FakeModel("gemma3:4b", answer=_answering(pick[small]))]) as server:
        bench_path = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
        assert bench_cli("run", "--config", str(bench_path)) == 0
    bench = config.load(bench_path)
    store = cache_mod.AnswerCache.open(isolated / "cache")
    return gather(bench, store, results.Portable(None))


def test_good_answers_win_every_task_and_swapping_swaps_the_winners(isolated):
    report = _run_four_tasks(isolated, big="good", small="bad")
    winners = {t.spec.id: t.verdict.winner for t in report.tasks}
    assert winners == {t["id"]: "big-brain" for t in TASKS}
    assert all(t.verdict.decided_by == "checks" for t in report.tasks)
    clear = [t.spec.id for t in report.tasks if t.verdict.objectively_clear]
    assert clear == ["gitea-webhook", "fleet-burndown-cron", "async-bug"]  # executed tests; evennia is lexical
    evennia = next(t for t in report.tasks if t.spec.id == "evennia-architecture")
    assert (evennia.verdict.evidence, evennia.verdict.weak) == ("static", True)
    webhook = next(t for t in report.tasks if t.spec.id == "gitea-webhook")
    assert webhook.verdict.reason.startswith("On executed tests, Big Brain passes every one; Local fails a critical "
                                             "executed check: webhook tests (10 of 19 tests pass; ")

    for path in (isolated / "cache").iterdir():  # a fresh cache, the same server answers swapped
        path.unlink() if path.is_file() else None
    import shutil

    shutil.rmtree(isolated / "cache")
    swapped = _run_four_tasks(isolated, big="bad", small="good")
    assert {t.spec.id: t.verdict.winner for t in swapped.tasks} == {t["id"]: "local" for t in TASKS}


# -- the rules, on hand-made cells ------------------------------------------------------------------------


def _bench(judge: bool = False) -> config.Benchmark:
    text = ("title: T\nmodels: [{id: a, model: m1}, {id: b, model: m2}]\n"
            "tasks: [{id: t, title: T, prompt: p, checks: [{type: contains, value: x}]}]\n")
    return config.parse(text + ("judge: {model: a}\n" if judge else ""), "b.yaml", {})


def _cell(model: str, text: str, checks=(), review: Review | None = None) -> CellResult:
    """checks: (passed, critical) or (status, critical, type) per check."""
    answer = Answer(key=f"k-{model}", model_id=model, task_id="t", text=text, latency_ms=10)
    results_ = []
    for i, spec in enumerate(checks):
        status, critical, kind = (spec + ("contains",))[:3] if len(spec) < 3 else spec
        status = {True: "pass", False: "fail"}.get(status, status)
        results_.append(CheckResult(name=f"check {i}", type=kind, status=status, critical=critical,
                                    detail=f"detail {i}"))
    return CellResult(task_id="t", model_id=model, key=f"k-{model}", status="ok", answer=answer,
                      checks=results_, review=review)


class _NoEvidence(Evidence):
    def __init__(self, judge=None):
        self._judge = judge

    def judge(self, key):
        return self._judge


def _review(model, score, stale=False):
    return Review(task="t", model=model, score=score, label="SOLID", reviewer="r", date="2026-11-01",
                  output_sha256="x", stale=stale)


def _judgement(winner):
    from generator.records import JudgeResult

    return JudgeResult(judge_model="a", models=("a", "b"), winner=winner, rationale="because")


def test_a_critical_executed_test_split_is_objectively_clear():
    bench = _bench()
    a = _cell("a", "x", [(False, True, "python"), (True, False, "python"), (True, False, "contains")])
    b = _cell("b", "y", [(True, True, "python"), (False, False, "python"), (False, False, "contains")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.decided_by, verdict.evidence, verdict.objectively_clear) == (
        "b", "checks", "tests", True)
    assert verdict.reason == ("On executed tests, b passes every critical one and scores 50%; "
                              "a fails a critical executed check: check 0 (detail 0).")


def test_the_reason_counts_every_critical_failure():
    bench = _bench()
    a = _cell("a", "x", [(False, True, "python"), (False, True, "shell")])
    b = _cell("b", "y", [(True, True, "python"), (True, True, "shell")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert verdict.reason == ("On executed tests, b passes every one; a fails 2 critical executed checks: "
                              "check 0 (detail 0), check 1 (detail 1).")


def test_lexical_differences_are_weak_and_never_clear():
    bench = _bench()
    a = _cell("a", "x", [(True, False, "python"), (True, True, "contains"), (True, False, "regex")])
    b = _cell("b", "y", [(True, False, "python"), (False, True, "contains"), (False, False, "regex")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.evidence, verdict.weak, verdict.objectively_clear) == ("a", "static", True, False)
    assert verdict.reason.startswith("Executed tests do not separate a and b; weak evidence only: on static")


def test_lexical_checks_never_override_a_review_or_the_judge():
    bench = _bench(judge=True)
    a = _cell("a", "x", [(True, False, "contains")], _review("a", 2))
    b = _cell("b", "y", [(False, False, "contains")], _review("b", 4))
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.decided_by, verdict.evidence) == ("b", "review", "review")
    a, b = _cell("a", "x", [(True, False, "regex")]), _cell("b", "y", [(False, False, "regex")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence(_judgement("b")))
    assert (verdict.winner, verdict.decided_by, verdict.evidence, verdict.self_preference) == (
        "b", "judge", "judge", True)
    assert "self-preference" in verdict.reason


def test_a_rubric_outranks_the_pairwise_judge():
    bench = _bench(judge=True)
    a = _cell("a", "x", [(True, False, "rubric")])
    b = _cell("b", "y", [(False, False, "rubric")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence(_judgement("b")))
    assert (verdict.winner, verdict.evidence, verdict.objectively_clear) == ("a", "rubric", False)


def test_a_check_that_could_not_run_never_decides():
    bench = _bench()
    a = _cell("a", "x", [("error", True, "python"), (True, False, "contains")])
    b = _cell("b", "y", [(True, True, "python"), (True, False, "contains")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.decided_by) == ("tie", "none")
    assert a.score == 1.0  # an error is not scored, not a zero


def test_small_test_pass_rate_difference_wins_but_is_not_objectively_clear():
    bench = _bench()
    a = _cell("a", "x", [(True, False, "python"), (True, False, "python"), (True, False, "python"), (False, False, "python")])
    b = _cell("b", "y", [(True, False, "python"), (True, False, "python"), (False, False, "python"), (False, False, "python")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.objectively_clear) == ("a", False)


def test_checks_tie_then_a_current_review_decides_and_a_stale_one_does_not():
    bench = _bench()
    a = _cell("a", "x", [(True, False)], _review("a", 5))
    b = _cell("b", "y", [(True, False)], _review("b", 2))
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.decided_by) == ("a", "review")
    assert verdict.reason == "Human review: a 5/5 (SOLID), b 2/5 (SOLID)."
    stale_a = _cell("a", "x", [(True, False)], _review("a", 5, stale=True))
    verdict = decide(bench, bench.tasks[0], [stale_a, b], _NoEvidence())
    assert (verdict.winner, verdict.decided_by) == ("tie", "none")


def test_a_model_that_did_not_answer_makes_the_task_na_with_the_reason():
    from generator.records import Failure

    bench = _bench()
    failed = CellResult(task_id="t", model_id="b", key="k", status="failed",
                        failure=Failure(key="k", model_id="b", task_id="t", reason="connection refused by X"))
    verdict = decide(bench, bench.tasks[0], [_cell("a", "x", [(True, False)]), failed], _NoEvidence())
    assert verdict.winner is None
    assert verdict.reason == "N/A: b did not answer (connection refused by X)"


@pytest.mark.parametrize("text, vote", [("fine.\nVERDICT: A", "A"), ("VERDICT: b", "B"), ("verdict: tie", "TIE"),
                                        ("I prefer the first one.", None), ("VERDICT: A\n...\nVERDICT: B", "B")])
def test_parse_verdict(text, vote):
    assert parse_verdict(text) == vote


# -- the judge, through the test server --------------------------------------------------------------------


def _judge_bench(isolated, server, judge_answer):
    server.models["gemma3:27b"].answer = judge_answer
    tasks = [{"id": "t", "title": "T", "prompt": "Name a prime.", "reference": "Any prime number."}]
    path = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks,
                       extra={"judge": {"model": "big-brain"}})
    return path


def _judge_answer(position_biased: bool = False, garbage: bool = False):
    def answer(prompt: str) -> str:
        if "=== Answer A ===" not in prompt:
            return "Seven." if "prime" in prompt else "?"
        if garbage:
            return "Both are fine, I think."
        if position_biased:
            return "The first is better.\nVERDICT: A"
        first = prompt.split("=== Answer A ===")[1].split("=== End of answer A ===")[0]
        return "Answer A names a prime.\nVERDICT: A" if "Seven" in first else "Answer B names a prime.\nVERDICT: B"
    return answer


def _judged(isolated, server):
    bench = config.load(isolated / "benchmark.yaml")
    store = cache_mod.AnswerCache.open(isolated / "cache")
    return gather(bench, store, results.Portable(None)).tasks[0]


def test_judge_asked_in_both_orders_agrees_and_decides(server, isolated):
    server.models["gemma3:4b"].answer = "Nine."
    bench = _judge_bench(isolated, server, _judge_answer())
    assert bench_cli("run", "--config", str(bench)) == 0
    judge_calls = [r for r in server.generations("gemma3:27b") if "=== Answer A ===" in r.body["messages"][-1]["content"]]
    assert len(judge_calls) == 2
    assert all(r.body["options"]["temperature"] == 0 for r in judge_calls)
    task = _judged(isolated, server)
    assert (task.verdict.winner, task.verdict.decided_by) == ("big-brain", "judge")
    assert task.verdict.reason == ("The LLM judge (Big Brain, model-graded) prefers Big Brain in both orders "
                                   "(the judge is also a contestant: self-preference possible).")
    assert "big-brain shown first: Answer A names a prime." in task.verdict.judge.rationale
    bench_cli("run", "--config", str(bench))
    assert len(server.generations("gemma3:27b")) == 3  # 1 answer + 2 judge calls, all cached now


def test_position_biased_judge_gives_a_tie(server, isolated):
    server.models["gemma3:4b"].answer = "Nine."
    bench_cli("run", "--config", str(_judge_bench(isolated, server, _judge_answer(position_biased=True))))
    task = _judged(isolated, server)
    assert (task.verdict.winner, task.verdict.decided_by) == ("tie", "none")
    assert task.verdict.reason == "The LLM judge's two orders disagree or both say tie."


def test_unparseable_judge_output_is_an_error_shown_not_a_verdict(server, isolated):
    server.models["gemma3:4b"].answer = "Nine."
    bench_cli("run", "--config", str(_judge_bench(isolated, server, _judge_answer(garbage=True))))
    task = _judged(isolated, server)
    assert task.verdict.winner == "tie" and task.verdict.decided_by == "none"
    assert task.verdict.reason == "Judge error: the judge's answer has no 'VERDICT: A|B|TIE' line."


# -- reviews ----------------------------------------------------------------------------------------------


def test_review_file_ties_a_review_to_the_answer_hash(server, isolated):
    from generator.records import sha256

    server.models["gemma3:27b"].answer = "Answer one."
    server.models["gemma3:4b"].answer = "Answer two."
    tasks = [{"id": "t", "title": "T", "prompt": "Anything."}]
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
    bench_cli("run", "--config", str(bench))
    (isolated / "reviews.yaml").write_text(
        "- {task: t, model: big-brain, score: 2, label: SUPERFICIAL, issues: [misses the point], reviewer: ana,\n"
        f"   date: 2026-11-20, output_sha256: {sha256('Answer one.')}}}\n"
        "- {task: t, model: local, score: 5, label: SOLID, issues: [], reviewer: ana, date: 2026-11-20,\n"
        f"   output_sha256: {sha256('an older answer')}}}\n")
    task = _judged(isolated, server)
    assert task.cell("big-brain").review.stale is False
    assert task.cell("big-brain").review.date == "2026-11-20"
    assert task.cell("local").review.stale is True
    assert task.verdict.winner == "tie"  # one review is stale, so reviews do not decide
    (isolated / "reviews.yaml").write_text("- {task: t, model: nobody, score: 9}\n")
    with pytest.raises(Exception) as caught:
        _judged(isolated, server)
    assert "reviews.yaml" in str(caught.value) and "score" in str(caught.value)


# -- rubric graded by the judge model -----------------------------------------------------------------------


def _rubric_judge(prompt: str) -> str:
    if "=== Answer ===" in prompt:  # rubric grading: YES when the graded answer asserts the claim
        graded = prompt.split("=== Answer ===")[1].split("=== End of answer ===")[0]
        return "1: YES\n2: NO" if "X is Y" in graded else "1: NO\n2: YES"
    if "=== Answer A ===" in prompt:
        return "Both fine.\nVERDICT: TIE"
    return "X is Y, and nothing else."


def test_a_rubric_is_graded_by_the_judge_cached_and_flagged_as_self_preference(server, isolated):
    server.models["gemma3:27b"].answer = _rubric_judge
    server.models["gemma3:4b"].answer = "X has Z."
    tasks = [{"id": "t", "title": "T", "prompt": "Describe X.", "reference": "X is Y; X has no Z.",
              "checks": [{"type": "rubric", "name": "claims", "must": ["X is Y."], "must_not": ["X has Z."]}]}]
    path = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks,
                       extra={"judge": {"model": "big-brain"}})
    assert bench_cli("run", "--config", str(path)) == 0
    task = _judged(isolated, server)
    assert task.cell("local").checks[0].detail == (
        "0 of 2 claims right (graded by big-brain); does not say: X is Y.; asserts: X has Z.")
    assert task.cell("big-brain").checks[0].status == "pass"
    verdict = task.verdict
    assert (verdict.winner, verdict.evidence, verdict.objectively_clear, verdict.self_preference) == (
        "big-brain", "rubric", False, True)
    assert verdict.reason.endswith("(the judge is also a contestant: self-preference possible).")
    calls = len(server.generations("gemma3:27b"))
    assert calls == 1 + 2 + 2  # its answer, two rubric gradings, the pairwise judge in both orders
    bench_cli("run", "--config", str(path))
    assert len(server.generations("gemma3:27b")) == calls  # all cached


def test_without_a_judge_a_rubric_is_not_scored_and_never_decides(server, isolated):
    server.models["gemma3:27b"].answer = "X is Y."
    server.models["gemma3:4b"].answer = "X has Z."
    tasks = [{"id": "t", "title": "T", "prompt": "Describe X.",
              "checks": [{"type": "rubric", "must": ["X is Y."]}]}]
    path = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)
    assert bench_cli("run", "--config", str(path)) == 0
    task = _judged(isolated, server)
    result = task.cell("local").checks[0]
    assert (result.status, result.detail) == ("error", "not scored: no judge model (set `judge:` in benchmark.yaml)")
    assert task.verdict.winner == "tie" and task.cell("local").score is None


def test_a_doubtful_executed_result_still_decides_but_is_never_objectively_clear():
    bench = _bench()
    a = _cell("a", "x", [(False, True, "python")])
    b = _cell("b", "y", [(True, True, "python")])
    a.checks[0] = a.checks[0].model_copy(update={"doubt": "the answer gives 2 definitions of f that behave differently"})
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert (verdict.winner, verdict.evidence, verdict.objectively_clear) == ("b", "tests", False)
    assert "not certain: the answer gives 2 definitions" in verdict.reason


def test_without_a_judge_an_unscored_rubric_tie_says_a_judge_is_needed():
    text = ("title: T\nmodels: [{id: a, model: m1}, {id: b, model: m2}]\n"
            "tasks: [{id: t, title: T, prompt: p, checks: [{type: contains, value: x}, "
            "{type: rubric, must_not: [It invents a scripting language.]}]}]\n")
    bench = config.parse(text, "b.yaml", {})
    a = _cell("a", "x", [(True, False, "contains"), ("error", True, "rubric")])
    b = _cell("b", "x", [(True, False, "contains"), ("error", True, "rubric")])
    verdict = decide(bench, bench.tasks[0], [a, b], _NoEvidence())
    assert verdict.winner == "tie" and "no judge configured" in verdict.reason
    assert "a judge is needed to tell these answers apart" in verdict.reason


def test_a_judge_call_that_breaks_unexpectedly_is_an_error_not_a_crash():
    from generator import judge as judge_mod
    from generator.providers import Request

    class Broken:
        def complete(self, request):
            raise OverflowError("cannot convert float infinity to integer")

    text, error = judge_mod._ask(Broken(), Request(model="m", prompt="p", system="", options={}))
    assert text == "" and error == "judge call failed: OverflowError: cannot convert float infinity to integer"
