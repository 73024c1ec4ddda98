"""Stage 4, evaluate: objective checks on each answer, human reviews, and the optional pairwise LLM judge.

Check results are cached by (answer hash, checks) so rendering does not run answer code again; a judge
verdict is a model call and is made only by `bench run`, cached like any answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from .cache import AnswerCache
from .config import Benchmark, TaskSpec
from .errors import ConfigError, ProviderError
from .providers import Provider, Request, provider_for
from .records import CellResult, JudgeResult, Review, sha256
from .results import Portable


@dataclass
class Evidence:
    """Where evidence comes from: the cache first, then the committed results.json."""

    cache: AnswerCache
    reviews: dict[tuple[str, str], Review]
    portable: Portable
    run_checks: bool = True  # False: only cached/committed check results are used
    _committed_checks: dict[str, list] = field(default_factory=dict)

    _committed_judges: dict[str, JudgeResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for task in self.portable.results.tasks if self.portable.results else []:
            if task.judge and task.judge.key:
                self._committed_judges[task.judge.key] = task.judge
            for cell in task.cells:
                if cell.checks_key and cell.checks:
                    self._committed_checks[cell.checks_key] = cell.checks


    def judge(self, key: str) -> JudgeResult | None:
        return self.cache.judge(key) or self._committed_judges.get(key)


def checks_key(task: TaskSpec, output_sha256: str) -> str:
    spec = json.dumps([c.model_dump() for c in task.checks], sort_keys=True)
    return sha256(f"{output_sha256}\n{spec}")


def evaluate_cell(task: TaskSpec, cell: CellResult, evidence: Evidence) -> CellResult:
    """The cell with its check results and review attached."""
    if cell.answer is None:
        return cell
    sha = cell.answer.output_sha256
    results = []
    if task.checks:
        key = checks_key(task, sha)
        results = evidence.cache.checks(key)
        if results is None:
            committed = evidence._committed_checks.get(key)
            if committed is not None:
                results = committed
            elif evidence.run_checks:
                from .checks import run_checks  # the sandbox is only loaded when code must run

                results = run_checks(task, cell.answer.text)
            else:
                results = []
            if results:
                evidence.cache.put_checks(key, results)
    review = evidence.reviews.get((task.id, cell.model_id))
    if review is not None and review.output_sha256 != sha:
        review = review.model_copy(update={"stale": True})
    return cell.model_copy(update={"checks": results, "review": review})


# ----------------------------------------------------------------------------------------------- reviews


def reviews_path(bench: Benchmark) -> Path:
    base = Path(bench.source_path).parent if bench.source_path else Path.cwd()
    return base / bench.report.reviews


def load_reviews(bench: Benchmark) -> dict[tuple[str, str], Review]:
    """reviews.yaml: a list of reviews, each tied to the hash of the answer reviewed."""
    path = reviews_path(bench)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as e:
        raise ConfigError(str(path), [f"not valid YAML: {e}"]) from None
    if not isinstance(data, list):
        raise ConfigError(str(path), ["(top level): expected a list of reviews"])
    reviews, problems = {}, []
    tasks, models = {t.id for t in bench.tasks}, {m.id for m in bench.models}
    for i, entry in enumerate(data):
        try:
            review = Review.model_validate({**entry, "stale": False} if isinstance(entry, dict) else entry)
        except ValidationError as e:
            problems += [f"[{i}].{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors(include_url=False)]
            continue
        if review.task not in tasks or review.model not in models:
            problems.append(f"[{i}]: no task {review.task!r} × model {review.model!r} in the benchmark")
            continue
        reviews[(review.task, review.model)] = review
    if problems:
        raise ConfigError(str(path), problems)
    return reviews


# ------------------------------------------------------------------------------------------------- judge

JUDGE_SYSTEM = (
    "You compare two answers to the same task. Judge correctness first, then completeness, then clarity. "
    "Ignore length and the order the answers are given in. Write a short rationale, then a last line that "
    "is exactly one of: VERDICT: A, VERDICT: B, VERDICT: TIE."
)
_VERDICT = re.compile(r"VERDICT:\s*(A|B|TIE)\b", re.IGNORECASE)


def judge_prompt(task: TaskSpec, first: str, second: str) -> str:
    reference = f"\n\nNotes on a good answer:\n{task.reference}" if task.reference else ""
    return (f"Task:\n{task.prompt}{reference}\n\n=== Answer A ===\n{first}\n=== End of answer A ===\n\n"
            f"=== Answer B ===\n{second}\n=== End of answer B ===")


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'TIE' from the judge's last VERDICT line; None when there is none."""
    found = _VERDICT.findall(text)
    return found[-1].upper() if found else None


def judge_key(bench: Benchmark, task: TaskSpec, a: CellResult, b: CellResult) -> str:
    judge = bench.model(bench.judge.model)
    material = [judge.id, judge.model, JUDGE_SYSTEM, task.prompt, task.reference,
                a.model_id, a.answer.output_sha256, b.model_id, b.answer.output_sha256]
    return sha256(json.dumps(material))


def judge_pair(bench: Benchmark, task: TaskSpec, a: CellResult, b: CellResult, provider: Provider) -> JudgeResult:
    """Ask the judge in both orders at temperature 0; the orders must agree or it is a tie."""
    judge = bench.model(bench.judge.model)
    options = {**bench.defaults.options.model_dump(exclude_none=True), "temperature": 0}
    votes, rationales = [], []
    pair = (a.model_id, b.model_id)
    for first, second in ((a, b), (b, a)):
        request = Request(model=judge.model, system=JUDGE_SYSTEM, options=options,
                          prompt=judge_prompt(task, first.answer.text, second.answer.text))
        try:
            text = provider.complete(request).text
        except ProviderError as e:
            return JudgeResult(judge_model=judge.id, models=pair, error=f"judge call failed: {e.reason}")
        vote = parse_verdict(text)
        if vote is None:
            return JudgeResult(judge_model=judge.id, models=pair, rationale=text.strip(),
                               error="the judge's answer has no 'VERDICT: A|B|TIE' line")
        votes.append({"A": first.model_id, "B": second.model_id, "TIE": "tie"}[vote])
        rationales.append(f"{first.model_id} shown first: {text.strip()}")
    winner = votes[0] if votes[0] == votes[1] else "tie"
    return JudgeResult(judge_model=judge.id, models=pair, winner=winner,
                       rationale="\n\n".join(rationales))


def run_judge(bench: Benchmark, cache: AnswerCache, portable: Portable) -> int:
    """Judge every task whose first two answers are both present and not yet judged. Returns calls made."""
    if bench.judge is None:
        return 0
    from .report import gather

    judge_model = bench.model(bench.judge.model)
    provider = provider_for(judge_model, bench.timeout_for(judge_model), bench.defaults.max_answer_chars)
    evidence = Evidence(cache=cache, reviews={}, portable=portable, run_checks=False)
    made = 0
    for task in gather(bench, cache, portable, evidence).tasks:
        answered = [c for c in task.cells if c.answer is not None]
        if len(answered) < 2:
            continue
        key = judge_key(bench, task.spec, answered[0], answered[1])
        if cache.judge(key) is None:
            result = judge_pair(bench, task.spec, answered[0], answered[1], provider).model_copy(update={"key": key})
            made += 1
            if result.error is None or "VERDICT" in result.error:
                cache.put_judge(key, result)  # a failed call is retried next run; an unparseable answer is kept
    return made
