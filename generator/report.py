"""What render reads: every cell's answer or failure, its evidence, and each task's verdict, gathered in one pass.

Answers come from the cache, then from the committed results.json for cells the cache lacks, so a fresh
clone renders the same site with no cache and no model. Never calls a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import AnswerCache
from .config import Benchmark, ModelSpec, TaskSpec
from .decide import decide
from .evaluate import Evidence, evaluate_cell, load_reviews
from .plan import cell_key
from .records import CellResult, ModelProbe, Verdict
from .results import Portable


@dataclass(frozen=True)
class ModelReport:
    spec: ModelSpec
    status: str  # ok, partial, unavailable, not_run
    reason: str | None
    probe: ModelProbe | None


@dataclass(frozen=True)
class TaskReport:
    spec: TaskSpec
    cells: list[CellResult]  # in model order
    verdict: Verdict

    def cell(self, model_id: str) -> CellResult:
        return next(c for c in self.cells if c.model_id == model_id)


@dataclass(frozen=True)
class Report:
    bench: Benchmark
    models: list[ModelReport]
    tasks: list[TaskReport]
    generated_at: str | None  # newest answer or attempt: the run's date, never the render's


def _cell(bench: Benchmark, model: ModelSpec, task: TaskSpec, cache: AnswerCache, portable: Portable) -> CellResult:
    key = cell_key(bench, model, task)
    answer = cache.answer(key) or portable.answers.get(key)
    if answer is not None:
        return CellResult(task_id=task.id, model_id=model.id, key=key, status="ok", answer=answer)
    failure = cache.failure(key) or portable.failures.get(key)
    if failure is not None:
        return CellResult(task_id=task.id, model_id=model.id, key=key, status="failed", failure=failure)
    return CellResult(task_id=task.id, model_id=model.id, key=key, status="not_run")


def _model_status(cells: list[CellResult]) -> tuple[str, str | None]:
    answered = sum(c.status == "ok" for c in cells)
    failed = [c for c in cells if c.status == "failed"]
    if answered == len(cells):
        return "ok", None
    if answered:
        return "partial", f"{answered} of {len(cells)} tasks answered; last failure: {failed[-1].reason}" if failed \
            else f"{answered} of {len(cells)} tasks answered"
    if failed:
        return "unavailable", failed[-1].reason
    return "not_run", "not run yet: run 'make bench'"


def gather(bench: Benchmark, cache: AnswerCache, portable: Portable, evidence: Evidence | None = None) -> Report:
    """Cells, evidence and verdicts for every task, ready to render."""
    evidence = evidence or Evidence(cache=cache, reviews=load_reviews(bench), portable=portable, bench=bench)
    tasks = []
    for task in bench.tasks:
        cells = [evaluate_cell(task, _cell(bench, m, task, cache, portable), evidence) for m in bench.models]
        tasks.append(TaskReport(spec=task, cells=cells, verdict=decide(bench, task, cells, evidence)))
    models = []
    for model in bench.models:
        cells = [t.cell(model.id) for t in tasks]
        probe = cache.probe(model.id)
        status, reason = _model_status(cells)
        models.append(ModelReport(spec=model, status=status, reason=reason, probe=probe))
    stamps = [c.answer.created_at if c.answer else c.failure.at for t in tasks for c in t.cells
              if c.answer or (c.failure and c.failure.at)]
    return Report(bench=bench, models=models, tasks=tasks, generated_at=max(stamps) if stamps else None)
