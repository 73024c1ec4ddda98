"""`bench run` as one library call: call the models, judge new pairs, check the new answers, record the run.

The CLI only shows what this reports. Failures are told calmly: a model that is down is one note (from the
run), not one line per cell; other failures that repeat with the same reason are told once, then counted.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import results
from .records import utc_now
from .run import RunEvent, RunSummary, run

if TYPE_CHECKING:
    from .cache import AnswerCache
    from .config import Benchmark

# What runs after the calls (judge, checks, history): imported while the first model loads, not before the
# first request (issue 12, item 8: start-up cost).
_AFTER_RUN = ("generator.evaluate", "generator.report", "generator.history")


def _import_after_run() -> None:
    for name in _AFTER_RUN:
        try:
            importlib.import_module(name)
        except Exception:  # imported again where used, and any error raised there
            return


@dataclass(frozen=True)
class RunOutcome:
    summary: RunSummary
    judged: int  # judge calls made (0 when no judge is configured or every pair was judged already)
    recorded: bool  # the run called a model, so docs/history.json got a new entry


class _Calm:
    """Passes run events on, turning repeated failures of one model with one reason into a single line."""

    def __init__(self, cache: AnswerCache, on_event: Callable[[RunEvent], None]):
        self.cache, self.on_event = cache, on_event
        self.told: set[tuple[str, str]] = set()  # (model id, reason) already told
        self.noted: set[tuple[str, str]] = set()  # told by the run's note that the model is down: not counted again
        self.repeats: dict[tuple[str, str], int] = {}

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "note" and ": " in event.message:
            model, reason = event.message.split(": ", 1)
            self.told.add((model, reason))
            self.noted.add((model, reason))
        if event.kind == "failed" and event.cell is not None:
            failure = self.cache.failure(event.cell.key)
            reason = failure.reason if failure else event.message
            key = (event.cell.model_id, reason)
            if key in self.told:
                self.repeats[key] = self.repeats.get(key, 0) + 1
                event = RunEvent("failed", "", event.cell)  # counted by the progress bar, not printed
            else:
                self.told.add(key)
        self.on_event(event)

    def close(self) -> None:
        for (model, reason), n in self.repeats.items():
            if (model, reason) not in self.noted:
                self.on_event(RunEvent("note", f"{model}: {n} more cell(s) failed the same way"))


def run_benchmark(bench: Benchmark, cache: AnswerCache, docs_dir: str | Path, *, only: set[str] | None = None,
                  refresh: bool = False, on_event: Callable[[RunEvent], None] = lambda e: None,
                  on_stage: Callable[[str], None] = lambda stage: None,
                  while_loading: Callable[[], None] = lambda: None) -> RunOutcome:
    """Run → judge → check → record, as `bench run` does. Never writes docs/ pages (that is render's job).
    ``while_loading`` runs in a thread while the first model loads (the CLI readies its console there)."""
    portable = results.load(docs_dir)
    for problem in portable.problems:  # a damaged entry costs that cell only; say which
        on_event(RunEvent("note", problem))
    calm = _Calm(cache, on_event)
    def prepare() -> None:  # while the first model loads: off the path to the first request
        while_loading()
        _import_after_run()

    summary = run(bench, cache, portable, only=only, refresh=refresh, on_event=calm, while_loading=prepare)
    calm.close()
    from . import history
    from .judge import run_judge
    from .report import gather

    judged = 0
    if bench.judge is not None:
        on_stage("judging pairs")
        judged = run_judge(bench, cache, portable)
    recorded = False
    if summary.called:
        on_stage("checking the new answers")
        report = gather(bench, cache, portable)  # runs the checks now, so render finds them cached
        history.record(docs_dir, history.snapshot(report, sorted(summary.called_cells), utc_now()))
        recorded = True
    return RunOutcome(summary=summary, judged=judged, recorded=recorded)
