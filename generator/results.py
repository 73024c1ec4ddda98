"""The portable record, docs/results.json: every answer in full with its measurements, key and digest.

The cache is local to one machine; this file is what everyone shares. Render falls back to it for cells
the cache lacks, and `bench run` seeds the cache from it instead of calling models again.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from .errors import BenchError
from .records import Answer, CheckResult, Failure, JudgeResult, ModelDetails, Record, Review

SCHEMA_VERSION = 1
FILENAME = "results.json"


class ModelEntry(Record):
    id: str
    label: str
    provider: str
    model: str = Field(description="The provider's model tag.")
    host: str = Field(description="Base URL, or 'redacted' when report.show_hosts is false.")
    hardware: str | None = None
    status: str = Field(description="ok, partial, unavailable or not_run.")
    reason: str | None = None
    details: ModelDetails | None = None
    digest: str | None = None
    warm_up_ms: float | None = Field(None, description="Empty-prompt load before the first timed call.")


class CellEntry(Record):
    model: str
    status: str = Field(description="ok, failed or not_run.")
    reason: str | None = None
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
    tokens_per_s_source: str | None = Field(None, description="server: the server's decode rate; stream: measured here.")
    prompt_cached_count: int | None = None
    machine_busy: bool = Field(False, description="Another call ran on the same machine during this one.")
    done_reason: str | None = None
    output_sha256: str | None = None
    digest: str | None = None
    server_version: str | None = None
    created_at: str | None = Field(None, description="When the answer arrived.")
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
    """Answers and failures of a results.json, found by cache key."""

    def __init__(self, results: ResultsFile | None):
        self.results = results
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
    """The committed record in ``docs_dir``, or an empty one when there is none."""
    path = Path(docs_dir) / FILENAME
    if not path.exists():
        return Portable(None)
    try:
        return Portable(ResultsFile.model_validate_json(path.read_text(encoding="utf-8")))
    except (ValidationError, ValueError, OSError) as e:
        first = e.errors()[0] if isinstance(e, ValidationError) else None
        where = f" at {'.'.join(map(str, first['loc']))}: {first['msg']}" if first else f": {e}"
        raise BenchError(
            f"{path} is not a results file this version can read{where}. "
            f"Restore it from git, or delete it to render from the cache alone."
        ) from None
