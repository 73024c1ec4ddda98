"""The portable record, docs/results.json: every answer in full with its measurements, key and digest.

The cache is local to one machine; this file is what everyone shares. Render falls back to it for cells
the cache lacks, and `bench run` seeds the cache from it instead of calling models again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from .errors import BenchError
from .records import REPLACED_NOTE, Answer, CheckResult, Failure, JudgeResult, ModelDetails, Reason, Record, Review

SCHEMA_VERSION = 1
FILENAME = "results.json"
R = TypeVar("R", bound=Record)


class ModelEntry(Record):
    id: str
    label: str
    provider: str
    model: str = Field(description="The provider's model tag.")
    host: str = Field(description="Base URL, or 'redacted' when report.show_hosts is false.")
    hardware: str | None = None
    status: str = Field(description="ok, partial, unavailable or not_run.")
    reason: Reason | None = None
    details: ModelDetails | None = None
    digest: str | None = None
    warm_up_ms: float | None = Field(None, description="Empty-prompt load before the first timed call.")


class CellEntry(Record):
    model: str
    status: str = Field(description="ok, failed or not_run.")
    reason: Reason | None = None
    key: str
    answer: str | None = Field(None, description="The answer in full.")
    thinking: str = ""
    latency_ms: float | None = None
    ttft_ms: float | None = None
    load_ms: float | None = None
    total_ms: float | None = None
    prompt_eval_ms: float | None = None
    eval_ms: float | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    tokens_per_s: float | None = None
    tokens_per_s_source: str | None = Field(
        None, description="server: the server's decode rate; stream: measured here.")
    prompt_cached_count: int | None = None
    machine_busy: bool = Field(False, description="Another call ran on the same machine during this one.")
    done_reason: str | None = None
    output_sha256: str | None = None
    digest: str | None = None
    server_version: str | None = None
    host: str | None = Field(None, description="Base URL the answer was made on, or 'redacted'.")
    hardware: str | None = Field(None, description="Declared hardware when the answer was made.")
    warm_up_ms: float | None = Field(None, description="The model load measured before this answer's run.")
    created_at: str | None = Field(None, description="When the answer arrived.")
    text_replaced: bool = Field(False, description=REPLACED_NOTE)
    failed_at: str | None = Field(None, description="When the last failed attempt was made.")
    failure_kind: str | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    checks_key: str | None = Field(None, description="Hash of the answer and the task's checks these results are for.")
    score: float | None = Field(None, description="Weighted check pass rate; null when not scored.")
    review: Review | None = None

    def to_answer(self, task_id: str) -> Answer | None:
        if self.status != "ok" or self.answer is None or self.latency_ms is None:
            return None
        fields = self.model_dump(include=set(Answer.model_fields) - {"text", "key", "model_id", "task_id"})
        return Answer(**{k: v for k, v in fields.items() if v is not None}, text=self.answer, key=self.key,
                      model_id=self.model, task_id=task_id)

    def to_failure(self, task_id: str) -> Failure | None:
        if self.status != "failed" or not self.reason:
            return None
        return Failure(key=self.key, model_id=self.model, task_id=task_id, reason=self.reason,
                       kind=self.failure_kind or "error", at=self.failed_at or "")


class TaskEntry(Record):
    id: str
    title: str
    winner: str | None = Field(None, description="Model id, 'tie', or null (N/A).")
    decided_by: str = "none"
    objectively_clear: bool = False
    reason: str = ""
    judge: JudgeResult | None = None
    evidence: str = Field("none", description="The kind of evidence that decided: tests, review, rubric, judge, "
                          "static or none (the Verdict's).")
    weak: bool = Field(False, description="Decided by static or lexical checks only: weak evidence.")
    self_preference: bool = Field(False, description="The judge model is also a contestant of this task.")
    cells: list[CellEntry]


class BenchmarkEntry(Record):
    title: str
    sha256: str


class ResultsFile(Record):
    schema_version: int = SCHEMA_VERSION
    generated_at: str | None = Field(None, description="When the newest answer or attempt was made (not render time).")
    benchmark: BenchmarkEntry
    models: list[ModelEntry]
    tasks: list[TaskEntry]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


class Portable:
    """Answers and failures of a results.json, found by cache key. ``problems``: entries that were skipped."""

    def __init__(self, results: ResultsFile | None, problems: list[str] | None = None):
        self.results = results
        self.problems = problems or []
        self.answers: dict[str, Answer] = {}
        self.failures: dict[str, Failure] = {}
        for task in results.tasks if results else []:
            for cell in task.cells:
                if (answer := cell.to_answer(task.id)) is not None:
                    self.answers[cell.key] = answer
                elif (failure := cell.to_failure(task.id)) is not None:
                    self.failures[cell.key] = failure

    def model(self, model_id: str) -> ModelEntry | None:
        if self.results is None:
            return None
        return next((m for m in self.results.models if m.id == model_id), None)


def load(docs_dir: str | Path) -> Portable:
    """The committed record in ``docs_dir``, or an empty one when there is none.

    A damaged entry (a cell, a task, a model) is skipped and named in ``problems``; the rest loads. Only a
    file that is not JSON at all, or of another schema version, stops the command.
    """
    path = Path(docs_dir) / FILENAME
    if not path.exists():
        return Portable(None)
    try:
        # Python's parser, not pydantic's: it accepts a lone surrogate escape, which the records then replace.
        document = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (ValueError, OSError, RecursionError) as e:
        raise BenchError(f"{path} is not a results file this version can read: {e}. "
                         f"Restore it from git, or delete it to render from the cache alone.") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise BenchError(f"{path} is not a results file this version can read (schema_version {version!r}, "
                         f"expected {SCHEMA_VERSION}). Restore it from git, or delete it to render from the cache alone.")
    problems: list[str] = []
    models = _entries(document.get("models"), ModelEntry, "models", problems)
    tasks = []
    if not isinstance(document.get("tasks"), list):
        problems.append("tasks: not a list")
    for i, task in enumerate(document.get("tasks") if isinstance(document.get("tasks"), list) else []):
        where = f"tasks[{i}]"
        if not isinstance(task, dict):
            problems.append(f"{where}: not an object")
            continue
        cells = _entries(task.get("cells"), CellEntry, f"{where}.cells", problems)
        entry = _entry({**task, "cells": []}, TaskEntry, where, problems)
        if entry is None:  # the task's own fields are damaged: its cells are still good evidence
            entry = _entry({**task, "cells": [], "judge": None}, TaskEntry, where, [])
        if entry is not None:
            tasks.append(entry.model_copy(update={"cells": cells}))
    benchmark = _entry(document.get("benchmark"), BenchmarkEntry, "benchmark", problems)
    results = ResultsFile(generated_at=document.get("generated_at") if isinstance(document.get("generated_at"), str)
                          else None, benchmark=benchmark or BenchmarkEntry(title="", sha256=""),
                          models=models, tasks=tasks)
    return Portable(results, [f"{path}: {p}; skipped" for p in problems])


def _entry(data: object, kind: type[R], where: str, problems: list[str]) -> R | None:
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        problems.append(f"{where}{loc}: {first['msg']}")
        return None


def _entries(data: object, kind: type[R], where: str, problems: list[str]) -> list[R]:
    if not isinstance(data, list):
        problems.append(f"{where}: not a list")
        return []
    found = (_entry(item, kind, f"{where}[{i}]", problems) for i, item in enumerate(data))
    return [e for e in found if e is not None]
