"""Run history: every `bench run` that called a model is recorded in docs/history.json (committed), so the
site can show what moved between runs: per task and model, latency and verdict then and now.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from .records import Record
from .report import Report

FILENAME = "history.json"
KEEP_RUNS = 50


class CellSnapshot(Record):
    model: str
    status: str
    latency_ms: float | None = None
    score: float | None = None
    output_sha256: str | None = None


class TaskSnapshot(Record):
    task: str
    winner: str | None
    decided_by: str
    cells: list[CellSnapshot]


class RunRecord(Record):
    run_at: str = Field(description="When the run ended (UTC).")
    benchmark_sha256: str
    digests: dict[str, str | None] = Field(description="Model id → digest of the weights it answered with.")
    called: list[str] = Field(description="'task × model' of every cell called in this run.")
    tasks: list[TaskSnapshot]


class History(Record):
    schema_version: int = 1
    runs: list[RunRecord] = Field(default_factory=list)


def load(docs_dir: str | Path) -> History:
    path = Path(docs_dir) / FILENAME
    if not path.exists():
        return History()
    try:
        return History.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError):
        return History()  # a damaged history is started again rather than stopping a run


def snapshot(report: Report, called: list[str], run_at: str) -> RunRecord:
    digests = {}
    for model in report.models:
        answered = [t.cell(model.spec.id).answer for t in report.tasks if t.cell(model.spec.id).answer]
        digests[model.spec.id] = answered[-1].digest if answered else None
    tasks = [
        TaskSnapshot(
            task=t.spec.id, winner=t.verdict.winner, decided_by=t.verdict.decided_by,
            cells=[CellSnapshot(model=c.model_id, status=c.status,
                                latency_ms=c.answer.latency_ms if c.answer else None, score=c.score,
                                output_sha256=c.answer.output_sha256 if c.answer else None) for c in t.cells],
        )
        for t in report.tasks
    ]
    return RunRecord(run_at=run_at, benchmark_sha256=report.bench.source_sha256, digests=digests, called=called,
                     tasks=tasks)


def record(docs_dir: str | Path, run: RunRecord) -> Path:
    """Append one run (keeping the last KEEP_RUNS) and write history.json."""
    history = load(docs_dir)
    runs = (history.runs + [run])[-KEEP_RUNS:]
    path = Path(docs_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(History(runs=runs).model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
