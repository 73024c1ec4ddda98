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
from .providers import redact_url
from .records import Answer, CellResult, ModelDetails, ModelProbe, Verdict
from .results import Portable


@dataclass(frozen=True)
class ModelReport:
    """One model and its environment as recorded with its answers (the config's value only where none is)."""

    spec: ModelSpec
    status: str  # ok, partial, unavailable, not_run
    reason: str | None
    probe: ModelProbe | None
    host: str  # base URL the answers were made on (credentials stripped), else the configured one
    hardware: str | None  # declared hardware recorded with the answers, else the configured one
    details: ModelDetails | None  # what the server reported: parameters, quantization, digest
    digest: str | None
    server_version: str | None
    warm_up_ms: float | None  # the empty-prompt load recorded with the model's first answers
    from_record: bool  # host and hardware come from answers (False: from today's benchmark.yaml)
    num_ctx: int | None = None  # the context window the calls ask for (in the cache key, so the answers' own)


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
    failure = cache.failure(key)
    committed = portable.failures.get(key)
    if failure is None or (committed is not None and (committed.reason, committed.kind) == (failure.reason, failure.kind)):
        # The same failure again is not news: it keeps the time it was first recorded, so that a run that got
        # nothing new changes no committed file (the page says "failing since").
        failure = committed or failure
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


def _most_common(values: list) -> object:
    """The value most answers share (ties: the latest), or None."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return max(reversed(values), key=values.count)


def _model_report(model: ModelSpec, cells: list[CellResult], probe: ModelProbe | None, portable: Portable,
                  num_ctx: int | None = None) -> ModelReport:
    status, reason = _model_status(cells)
    answers: list[Answer] = sorted((c.answer for c in cells if c.answer), key=lambda a: a.created_at)
    committed = portable.model(model.id)
    recorded_host = _most_common([a.host for a in answers]) or (committed.host if committed and answers else None)
    recorded_hw = _most_common([a.hardware for a in answers])
    if recorded_hw is None and committed and answers:
        recorded_hw = committed.hardware
    from_record = recorded_host is not None
    details = probe.details if probe and probe.details else (committed.details if committed else None)
    digest = _most_common([a.digest for a in answers]) or (details.digest if details else None)
    version = _most_common([a.server_version for a in answers]) or (details.server_version if details else None)
    # A load time belongs to the answers made right after it: the earliest answers' warm-up, so that a rerun
    # that finds the model already resident does not replace a cold load with a warm one.
    warm = next((a.warm_up_ms for a in answers if a.warm_up_ms is not None), None)
    if warm is None and answers and committed is not None:
        warm = committed.warm_up_ms
    return ModelReport(spec=model, status=status, reason=reason, probe=probe,
                       host=recorded_host or redact_url(model.host),
                       hardware=recorded_hw if from_record else model.hardware, details=details, digest=digest,
                       server_version=version, warm_up_ms=warm, from_record=from_record, num_ctx=num_ctx)


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
        # An OpenAI-compatible server cannot be sent num_ctx: its context is the server's setting.
        num_ctx = bench.defaults.options.merged(model.options).num_ctx if model.provider == "ollama" else None
        models.append(_model_report(model, cells, cache.probe(model.id), portable, num_ctx))
    stamps = [c.answer.created_at if c.answer else c.failure.at for t in tasks for c in t.cells
              if c.answer or (c.failure and c.failure.at)]
    return Report(bench=bench, models=models, tasks=tasks, generated_at=max(stamps) if stamps else None)
