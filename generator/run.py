"""Stage 3, run: call each uncached cell once through its provider and store each result the moment it arrives.

Scheduling: cells are grouped by host; hosts run at the same time; on one host the calls go model by model
(all of one model's tasks, then the next) so a server that holds one model at a time loads each model once.
Before a model's first timed call it is loaded with an empty prompt, so answer latency is not a load time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Literal

from .cache import AnswerCache
from .config import Benchmark, ModelSpec
from .errors import ProviderError, UsageError
from .plan import make_plan, request_for
from .providers import Provider, provider_for, redact_url
from .records import Answer, Cell, Failure, ModelDetails, ModelProbe
from .results import Portable

EventKind = Literal["planned", "answered", "failed", "note"]


@dataclass(frozen=True)
class RunEvent:
    """Something the CLI may show: a cell finished, or a one-line note."""

    kind: EventKind
    message: str = ""
    cell: Cell | None = None
    total: int = 0


@dataclass
class RunSummary:
    cells: int = 0
    cached: int = 0
    seeded: int = 0
    called: int = 0
    failed: int = 0
    called_cells: list[str] = field(default_factory=list)  # "task × model"

    def line(self) -> str:
        seeded = f", {self.seeded} from results.json" if self.seeded else ""
        return f"{self.cells} cells: {self.cached} cached{seeded}, {self.called} called, {self.failed} failed"


def _selected(cell: Cell, only: set[str]) -> bool:
    return not only or cell.task_id in only or cell.model_id in only


class Runner:
    """One `bench run`. Thread-safe counters; the cache is written from the host threads."""

    def __init__(
        self,
        bench: Benchmark,
        cache: AnswerCache,
        portable: Portable,
        on_event: Callable[[RunEvent], None] = lambda e: None,
    ):
        self.bench = bench
        self.cache = cache
        self.portable = portable
        self.on_event = on_event
        self.summary = RunSummary()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._finished: set[str] = set()  # keys of cells answered or failed in this run

    # -- the whole run --------------------------------------------------------------------------------

    def run(self, *, only: set[str] | None = None, refresh: bool = False) -> RunSummary:
        only = only or set()
        unknown = only - {t.id for t in self.bench.tasks} - {m.id for m in self.bench.models}
        if unknown:
            raise UsageError(f"--only {', '.join(sorted(unknown))}: no task or model has that id; see 'bench status'")
        cells = [c for c in make_plan(self.bench, self.cache) if _selected(c, only)]
        self.summary.cells = len(cells)
        todo: list[Cell] = []
        for cell in cells:
            if cell.state == "cached" and not refresh:
                self.summary.cached += 1
            elif not refresh and (answer := self.portable.answers.get(cell.key)) is not None:
                self.cache.put_answer(answer)  # a committed answer is as good as a cached one
                self.summary.seeded += 1
            else:
                todo.append(cell)
        self.on_event(RunEvent("planned", total=len(todo)))
        # Host → model → its cells to call and its cached cells (whose digest the probe re-checks).
        hosts: dict[str, dict[str, tuple[list[Cell], list[Cell]]]] = defaultdict(dict)
        todo_keys = {c.key for c in todo}
        for cell in cells:
            model = self.bench.model(cell.model_id)
            calls, kept = hosts[model.host].setdefault(model.id, ([], []))
            if cell.key in todo_keys:
                calls.append(cell)
            elif cell.state == "cached":
                kept.append(cell)
        threads = [
            threading.Thread(target=self._run_host, args=(models,), name=f"host-{i}", daemon=True)
            for i, models in enumerate(hosts.values())
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
        finally:
            self.stop.set()
        return self.summary

    # -- one host ------------------------------------------------------------------------------------

    def _run_host(self, models: dict[str, tuple[list[Cell], list[Cell]]]) -> None:
        """One host's models in order; each probed, loaded once, then its cells called."""
        for model_id, (calls, kept) in models.items():
            if self.stop.is_set():
                return
            try:
                self._run_model(self.bench.model(model_id), calls, kept)
            except Exception as e:  # whatever goes wrong costs this model's cells, never the host's other models
                error = _unexpected(e)
                self._note(f"{model_id}: {error.reason}")
                for cell in calls:
                    if cell.key not in self._finished:
                        self._record_failure(cell, error)

    def _run_model(self, model: ModelSpec, calls: list[Cell], kept: list[Cell]) -> None:
        provider = provider_for(model, self.bench.timeout_for(model), self.bench.defaults.max_answer_chars)
        try:
            details = provider.probe(model.model)
        except ProviderError as e:
            self.cache.put_probe(ModelProbe(model_id=model.id, ok=False, reason=e.reason))
            if calls:
                self._note(f"{model.id}: {e.reason}")
            for cell in calls:
                self._record_failure(cell, e)
            return
        calls = calls + self._repulled(model, details, kept)
        warm = measured = None
        if calls and self.bench.defaults.warm_up:
            try:
                warm = measured = provider.warm_up(model.model)
            except ProviderError as e:
                self._note(f"{model.id}: warm-up failed ({e.reason}); calling anyway")
        if warm is None and (before := self.cache.probe(model.id)) is not None:
            warm = before.warm_up_ms  # a run that loads nothing keeps the load time last measured
        self.cache.put_probe(ModelProbe(model_id=model.id, ok=True, details=details, warm_up_ms=warm))
        # The answers carry the load measured in *this* run, so the report keeps each measurement with
        # the answers it was made with (a rerun that finds the model resident does not overwrite it).
        self._call_all(provider, model, details, calls, measured)

    def _repulled(self, model: ModelSpec, details: ModelDetails, kept: list[Cell]) -> list[Cell]:
        """Cached cells answered by other weights than the tag now has: they are called again."""
        stale, old = [], None
        for cell in kept:
            answer = self.cache.answer(cell.key)
            if answer and answer.digest and details.digest and answer.digest != details.digest:
                stale.append(cell)
                old = old or answer.digest
        if stale:
            self._note(
                f"{model.id}: {model.model} was re-pulled (digest {old[:19]} → {details.digest[:19]}); "
                f"calling its {len(stale)} cached cell(s) again"
            )
            with self._lock:
                self.summary.cached -= len(stale)
            self.on_event(RunEvent("planned", total=len(stale)))
        return stale

    def _call_all(self, provider: Provider, model: ModelSpec, details: ModelDetails, cells: list[Cell],
                  warm_up_ms: float | None = None) -> None:
        """`concurrency_per_host` workers share this model's cells."""
        jobs: queue.Queue[Cell] = queue.Queue()
        for cell in cells:
            jobs.put(cell)

        def worker() -> None:
            while not self.stop.is_set():
                try:
                    cell = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    self._call(provider, model, details, cell, warm_up_ms)
                except Exception as e:  # an answer that cannot be kept fails its own cell, not the others
                    self._record_failure(cell, _unexpected(e))

        width = min(self.bench.defaults.concurrency_per_host, len(cells))
        if width <= 1:
            worker()
            return
        workers = [threading.Thread(target=worker, daemon=True) for _ in range(width)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def _call(self, provider: Provider, model: ModelSpec, details: ModelDetails, cell: Cell,
              warm_up_ms: float | None = None) -> None:
        task = self.bench.task(cell.task_id)
        request = request_for(self.bench, model, task)
        retries = self.bench.defaults.retries
        for attempt in range(retries + 1):
            if self.stop.is_set():
                return
            try:
                completion = provider.complete(request)
                break
            except ProviderError as e:
                if e.transient and attempt < retries:
                    time.sleep(min(0.5 * 2**attempt, 4.0))
                    continue
                self._record_failure(cell, e)
                return
        answer = Answer(
            **completion.model_dump(exclude={"digest", "server_version"}),
            digest=details.digest,
            server_version=details.server_version,
            key=cell.key,
            model_id=cell.model_id,
            task_id=cell.task_id,
            host=redact_url(model.host),
            hardware=model.hardware,
            warm_up_ms=warm_up_ms,
        )
        self.cache.put_answer(answer)
        with self._lock:
            self._finished.add(cell.key)
            self.summary.called += 1
            self.summary.called_cells.append(f"{cell.task_id} × {cell.model_id}")
        self.on_event(RunEvent("answered", f"{cell.task_id} × {cell.model_id}: {answer.latency_ms / 1000:.1f}s", cell))

    def _record_failure(self, cell: Cell, error: ProviderError) -> None:
        failure = Failure(key=cell.key, model_id=cell.model_id, task_id=cell.task_id, reason=error.reason,
                          kind=error.kind)
        reason = failure.reason
        try:
            self.cache.put_failure(failure)
        except Exception as e:  # still counted and shown: the next run calls the cell again anyway
            reason += f" (not recorded in the cache: {_unexpected(e).reason})"
        with self._lock:
            self.summary.failed += 1
            self._finished.add(cell.key)
        self.on_event(RunEvent("failed", f"{cell.task_id} × {cell.model_id}: {reason}", cell))

    def _note(self, message: str) -> None:
        self.on_event(RunEvent("note", message))


def _unexpected(error: Exception) -> ProviderError:
    """Any exception as a cell's failure: a reason in one line, retried on the next run."""
    if isinstance(error, ProviderError):
        return error
    detail = " ".join(str(error).split())[:200]
    return ProviderError(f"the result could not be kept ({type(error).__name__}: {detail}); "
                         f"'bench run' tries the cell again", kind="internal")


def run(bench: Benchmark, cache: AnswerCache, portable: Portable, *, only: set[str] | None = None,
        refresh: bool = False, on_event: Callable[[RunEvent], None] = lambda e: None) -> RunSummary:
    """Call every uncached cell (or every selected cell with refresh) once; returns the counts."""
    with cache.run_lock():
        return Runner(bench, cache, portable, on_event).run(only=only, refresh=refresh)
