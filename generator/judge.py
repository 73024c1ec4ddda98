"""The judge model: pairwise comparison of two answers and rubric grading of one, each cached like an answer.

Pairwise: both orders at temperature 0; orders that disagree make a tie (as FastChat's MT-Bench does).

Rubric: one call per (answer, rubric check): the judge is given the task, the reference and the answer and
asked, for each numbered claim, whether the answer ASSERTS it. Denying a claim ("there is no X") is not
asserting it, so a must-not claim is negation-aware by construction. The judge's raw reply is what is
cached (as a JudgeResult whose rationale is the reply); the grade is parsed from it when evidence is
gathered. Only `bench run` calls the judge; gathering and rendering read the cache.
"""

from __future__ import annotations

import json
import re

from .cache import AnswerCache
from .config import Benchmark, RubricCheck, TaskSpec
from .errors import ProviderError
from .plan import cell_key
from .providers import Provider, Request, provider_for
from .records import Answer, CheckResult, JudgeResult, sha256
from .results import Portable

JUDGE_SYSTEM = (
    "You compare two answers to the same task. Judge correctness first, then completeness, then clarity. "
    "Ignore length and the order the answers are given in. Write a short rationale, then a last line that "
    "is exactly one of: VERDICT: A, VERDICT: B, VERDICT: TIE."
)
RUBRIC_SYSTEM = (
    "You grade one answer against numbered claims. For each claim decide whether the ANSWER ASSERTS it, that "
    "is, states it as true. Mentioning something only to deny it (\"there is no X\", \"X does not exist\") is "
    "NOT asserting it. Use the reference notes only to understand the claims; grade what the answer says. "
    "Reply with one line per claim, exactly `N: YES` or `N: NO`, then nothing else."
)
_VERDICT = re.compile(r"VERDICT:\s*(A|B|TIE)\b", re.IGNORECASE)
_CLAIM = re.compile(r"^\W*(\d+)\W*\s*(YES|NO)\b", re.IGNORECASE | re.MULTILINE)


# ----------------------------------------------------------------------------------------------- pairwise


def judge_prompt(task: TaskSpec, first: str, second: str) -> str:
    reference = f"\n\nNotes on a good answer:\n{task.reference}" if task.reference else ""
    return (f"Task:\n{task.prompt}{reference}\n\n=== Answer A ===\n{first}\n=== End of answer A ===\n\n"
            f"=== Answer B ===\n{second}\n=== End of answer B ===")


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'TIE' from the judge's last VERDICT line; None when there is none."""
    found = _VERDICT.findall(text)
    return found[-1].upper() if found else None


def judge_key(bench: Benchmark, task: TaskSpec, a_model: str, a_sha: str, b_model: str, b_sha: str) -> str:
    judge = bench.model(bench.judge.model)
    material = [judge.id, judge.model, JUDGE_SYSTEM, task.prompt, task.reference, a_model, a_sha, b_model, b_sha]
    return sha256(json.dumps(material))


def judge_pair(bench: Benchmark, task: TaskSpec, a: Answer, b: Answer, provider: Provider) -> JudgeResult:
    """Ask the judge in both orders at temperature 0; the orders must agree or it is a tie."""
    judge = bench.model(bench.judge.model)
    votes, rationales = [], []
    pair = (a.model_id, b.model_id)
    for first, second in ((a, b), (b, a)):
        request = Request(model=judge.model, system=JUDGE_SYSTEM, options=_options(bench),
                          prompt=judge_prompt(task, first.text, second.text))
        text, error = _ask(provider, request)
        if error is not None:
            return JudgeResult(judge_model=judge.id, models=pair, error=error)
        vote = parse_verdict(text)
        if vote is None:
            return JudgeResult(judge_model=judge.id, models=pair, rationale=text.strip(),
                               error="the judge's answer has no 'VERDICT: A|B|TIE' line")
        votes.append({"A": first.model_id, "B": second.model_id, "TIE": "tie"}[vote])
        rationales.append(f"{first.model_id} shown first: {text.strip()}")
    winner = votes[0] if votes[0] == votes[1] else "tie"
    return JudgeResult(judge_model=judge.id, models=pair, winner=winner, rationale="\n\n".join(rationales))


# ------------------------------------------------------------------------------------------------- rubric


def rubric_prompt(task: TaskSpec, check: RubricCheck, answer: str) -> str:
    claims = "\n".join(f"{i}. {claim}" for i, claim in enumerate([*check.must, *check.must_not], start=1))
    reference = f"\n\nReference notes:\n{task.reference}" if task.reference else ""
    return (f"Task:\n{task.prompt}{reference}\n\n=== Answer ===\n{answer}\n=== End of answer ===\n\n"
            f"Claims (does the answer assert each one?):\n{claims}")


def rubric_key(bench: Benchmark, task: TaskSpec, check: RubricCheck, model_id: str, answer_sha: str) -> str:
    judge = bench.model(bench.judge.model)
    material = ["rubric", judge.id, judge.model, RUBRIC_SYSTEM, task.prompt, task.reference, check.must,
                check.must_not, model_id, answer_sha]
    return sha256(json.dumps(material))


def grade_rubric(bench: Benchmark, task: TaskSpec, check: RubricCheck, answer: Answer,
                 provider: Provider) -> JudgeResult:
    judge = bench.model(bench.judge.model)
    request = Request(model=judge.model, system=RUBRIC_SYSTEM, options=_options(bench),
                      prompt=rubric_prompt(task, check, answer.text))
    pair = (answer.model_id, answer.model_id)
    text, error = _ask(provider, request)
    if error is not None:
        return JudgeResult(judge_model=judge.id, models=pair, error=error)
    return JudgeResult(judge_model=judge.id, models=pair, rationale=text.strip())


def _ask(provider: Provider, request: Request) -> tuple[str, str | None]:
    """The judge's text, or why there is none. A server that misbehaves in a way the provider did not map
    (an absurd count, say) costs this judgement only, never the run."""
    try:
        return provider.complete(request).text, None
    except ProviderError as e:
        return "", f"judge call failed: {e.reason}"
    except Exception as e:  # noqa: BLE001 - untrusted server data; the reason is shown, the run goes on
        return "", f"judge call failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}"


def rubric_result(check: RubricCheck, name: str, graded: JudgeResult | None, why_missing: str) -> CheckResult:
    """The rubric check's result from the judge's cached reply (status error when there is none)."""
    claims = [*check.must, *check.must_not]
    base = dict(name=name, type="rubric", critical=check.critical, weight=check.weight)
    if graded is None or graded.error:
        reason = graded.error if graded is not None else why_missing
        return CheckResult(**base, status="error", detail=f"not scored: {reason}")
    answers = {int(n): v.upper() == "YES" for n, v in _CLAIM.findall(graded.rationale)}
    if any(i not in answers for i in range(1, len(claims) + 1)):
        return CheckResult(**base, status="error", detail="not scored: the judge did not grade every claim")
    missed = [c for i, c in enumerate(check.must, start=1) if not answers[i]]
    made = [c for i, c in enumerate(check.must_not, start=len(check.must) + 1) if answers[i]]
    good = len(claims) - len(missed) - len(made)
    detail = f"{good} of {len(claims)} claims right (graded by {graded.judge_model})"
    if missed:
        detail += f"; does not say: {missed[0]}" + (f" (+{len(missed) - 1})" if len(missed) > 1 else "")
    if made:
        detail += f"; asserts: {made[0]}" + (f" (+{len(made) - 1})" if len(made) > 1 else "")
    return CheckResult(**base, status="pass" if good == len(claims) else "fail", detail=detail,
                       score=good / len(claims))


# ---------------------------------------------------------------------------------------------- running


def run_judge(bench: Benchmark, cache: AnswerCache, portable: Portable) -> int:
    """Judge every task's first two answers and grade every rubric not yet cached. Returns calls made."""
    if bench.judge is None:
        return 0
    judge_model = bench.model(bench.judge.model)
    provider = provider_for(judge_model, bench.timeout_for(judge_model), bench.defaults.max_answer_chars)
    made = 0
    for task in bench.tasks:
        answers = []
        for model in bench.models:
            key = cell_key(bench, model, task)
            answer = cache.answer(key) or portable.answers.get(key)
            if answer is not None:
                answers.append(answer)
        for check in (c for c in task.checks if isinstance(c, RubricCheck)):
            for answer in answers:
                key = rubric_key(bench, task, check, answer.model_id, answer.output_sha256)
                if cache.judge(key) is None:
                    result = grade_rubric(bench, task, check, answer, provider).model_copy(update={"key": key})
                    made += 1
                    if result.error is None:
                        cache.put_judge(key, result)
        if len(answers) < 2:
            continue
        a, b = answers[0], answers[1]
        key = judge_key(bench, task, a.model_id, a.output_sha256, b.model_id, b.output_sha256)
        if cache.judge(key) is None:
            result = judge_pair(bench, task, a, b, provider).model_copy(update={"key": key})
            made += 2
            if result.error is None or "VERDICT" in result.error:
                cache.put_judge(key, result)  # a failed call is retried next run; an unparseable answer is kept
    return made


def _options(bench: Benchmark) -> dict:
    return {**bench.defaults.options.model_dump(exclude_none=True), "temperature": 0}
