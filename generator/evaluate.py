"""Stage 4, evaluate: objective checks on each answer, human reviews, and the judge's cached grades.

Check results are cached by (answer hash, checks) so rendering does not run answer code again. Rubric checks
are graded by the judge model (generator/judge.py) during `bench run`; here their cached grades are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from .cache import AnswerCache
from .config import Benchmark, RubricCheck, TaskSpec
from .errors import ConfigError
from .judge import rubric_key, rubric_result
from .records import CellResult, CheckResult, JudgeResult, Review, sha256
from .results import Portable


@dataclass
class Evidence:
    """Where evidence comes from: the cache first, then the committed results.json."""

    cache: AnswerCache
    reviews: dict[tuple[str, str], Review]
    portable: Portable
    run_checks: bool = True  # False: only cached/committed check results are used
    bench: Benchmark | None = None  # for the judge model that grades rubrics
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
    results: list[CheckResult] = []
    if task.checks:
        key = checks_key(task, sha)
        committed = evidence._committed_checks.get(key)
        if committed is not None and len(committed) != len(task.checks):
            committed = None
        objective = evidence.cache.checks(key)
        if objective is None and committed is not None:
            objective = [r for r, c in zip(committed, task.checks) if not isinstance(c, RubricCheck)]
        elif objective is None and evidence.run_checks:
            objective = objective_checks(task, cell.answer.text)
            if all(r.scored for r in objective):  # a check that could not run (no sandbox here) is tried again
                evidence.cache.put_checks(key, objective)
        if objective is not None:
            graded = iter(objective)
            for i, check in enumerate(task.checks):
                if isinstance(check, RubricCheck):
                    results.append(_rubric(task, check, cell, evidence, committed[i] if committed else None))
                else:
                    results.append(next(graded))
    review = evidence.reviews.get((task.id, cell.model_id))
    if review is not None and review.output_sha256 != sha:
        review = review.model_copy(update={"stale": True})
    return cell.model_copy(update={"checks": results, "review": review})


def objective_checks(task: TaskSpec, answer_text: str) -> list[CheckResult]:
    """The results of the task's checks but its rubrics (which the judge grades), as the check cache holds them."""
    from .checks import run_check  # the sandbox is only loaded when code must run
    from .parse import parse_answer

    parsed, prompt = parse_answer(answer_text), parse_answer(task.prompt)
    return [run_check(c, parsed, prompt) for c in task.checks if not isinstance(c, RubricCheck)]


def _rubric(task: TaskSpec, check: RubricCheck, cell: CellResult, evidence: Evidence,
            committed: CheckResult | None) -> CheckResult:
    from .checks import default_name

    name = check.name or default_name(check)
    bench = evidence.bench
    if bench is None or bench.judge is None:
        return rubric_result(check, name, None, "no judge model (set `judge:` in benchmark.yaml)")
    graded = evidence.judge(rubric_key(bench, task, check, cell.model_id, cell.answer.output_sha256))
    if graded is None and committed is not None and committed.status != "error":
        return committed
    return rubric_result(check, name, graded, "not graded yet: run 'bench run'")


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


