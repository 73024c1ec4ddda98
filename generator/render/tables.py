"""The comparison and latency tables as CSV, and what moved between the two latest recorded runs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .. import history as history_mod
from ..config import Benchmark
from .views import ModelView, TaskView


def tables_csv(models: list[ModelView], tasks: list[TaskView]) -> tuple[str, str]:
    """The comparison and latency tables as CSV (comparison.csv, latency.csv), linked from the summary."""
    comparison, latency = io.StringIO(), io.StringIO()
    cw, lw = csv.writer(comparison, lineterminator="\n"), csv.writer(latency, lineterminator="\n")
    cw.writerow(["task", *[m.id for m in models], "winner", "decided_by", "objectively_clear"])
    lw.writerow(["task", *[f"{m.id}_latency_ms" for m in models]])
    for t in tasks:
        verdict = t.verdict
        cw.writerow([t.spec.id, *[c.summary for c in t.cells], verdict.winner or "N/A", verdict.decided_by,
                     str(verdict.objectively_clear).lower()])
        lw.writerow([t.spec.id, *[f"{c.answer.latency_ms:.1f}" if c.answer else "" for c in t.cells]])
    return comparison.getvalue(), latency.getvalue()


@dataclass(frozen=True)
class Move:
    """One task × model between the two latest recorded runs."""

    task: str
    model: str
    latency_before: float | None
    latency_now: float | None
    score_before: float | None
    score_now: float | None
    answer: str  # 'changed', 'same', 'new' (no earlier answer) or 'none' (no answer now)
    winner_before: str | None
    winner_now: str | None

    @property
    def latency_change(self) -> str:
        if self.latency_before is None or self.latency_now is None:
            return "—"
        pct = (self.latency_now - self.latency_before) / self.latency_before * 100 if self.latency_before else 0
        return f"{pct:+.0f}%"


def _answer_move(before: str | None, now: str | None) -> str:
    if now is None:
        return "none"
    if before is None:
        return "new"
    return "same" if before == now else "changed"


def history_moves(history: history_mod.History, bench: Benchmark) -> list[Move]:
    """Per task and model, latency, score and winner in the run before the last and in the last."""
    if len(history.runs) < 2:
        return []
    before, now = history.runs[-2], history.runs[-1]
    old = {(t.task, c.model): (t, c) for t in before.tasks for c in t.cells}
    moves = []
    for t in now.tasks:
        for c in t.cells:
            if (t.task, c.model) not in old:
                continue
            ot, oc = old[(t.task, c.model)]
            moves.append(Move(task=t.task, model=c.model, latency_before=oc.latency_ms, latency_now=c.latency_ms,
                              score_before=oc.score, score_now=c.score,
                              answer=_answer_move(oc.output_sha256, c.output_sha256),
                              winner_before=ot.winner, winner_now=t.winner))
    return moves
