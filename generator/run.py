"""Stage 3, run: call each uncached cell once through its provider and store each result the moment it arrives.

Scheduling: cells are grouped by machine, then host, then model. Machines run at the same time; on one
machine the calls go host by host and model by model (all of one model's tasks, then the next), so a server
that holds one model at a time loads each model once, and two servers on one laptop do not compete for its
cores (a llama.cpp answer measured beside a busy Ollama ran at 2.6 tokens/s instead of 55). Hosts that
resolve to the same address (every loopback address is one) share a machine unless the models say
otherwise with ``machine:``. Before a model's first timed call it is loaded with an empty prompt carrying
the calls' load-time options, so answer latency is not a load time.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal

from .cache import AnswerCache
from .config import Benchmark, ModelSpec
from .errors import ProviderError, UsageError
from .machines import group_by_machine
from .plan import make_plan, request_for
from .providers import Provider, Request, provider_for, redact_url
from .records import Answer, Cell, Failure, ModelDetails, ModelProbe, build_run_models
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


class _Occupancy:
    """Calls in flight on one machine; a call learns whether another ran beside it at any moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, bool] = {}
        self._next = 0

    @contextmanager
    def call(self) -> Iterator[Callable[[], bool]]:
        with self._lock:
            token, self._next = self._next, self._next + 1
            for other in self._running:
                self._running[other] = True
            self._running[token] = bool(self._running)
        try:
            yield lambda: self._running[token]
        finally:
            with self._lock:
                del self._running[token]


class Runner:
    """One `bench run`. Thread-safe counters; the cache is written from the host threads."""

    def __init__(
        self,
        bench: Benchmark,
        cache: AnswerCache,
        portable: Portable,
        on_event: Callable[[RunEvent], None] = lambda e: None,
        while_loading: Callable[[], None] | None = None,
    ):
        self.bench = bench
        self.cache = cache
        self.portable = portable
        self.on_event = on_event
        self.while_loading = while_loading
        self._preparing: threading.Thread | None = None
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
        # Machine → model (host by host) → its cells to call and its cached cells (whose digest the probe
        # re-checks). Only models with cells to call, or cached cells to re-check, are visited.
        todo_keys = {c.key for c in todo}
        by_model: dict[str, tuple[list[Cell], list[Cell]]] = {}
        for cell in cells:
            calls, kept = by_model.setdefault(cell.model_id, ([], []))
            if cell.key in todo_keys:
                calls.append(cell)
            elif cell.state == "cached":
                kept.append(cell)
        machines = group_by_machine([self.bench.model(m) for m in by_model])
        for key, models in machines.items():
            hosts = sorted({redact_url(m.host) for m in models})
            if len(hosts) > 1 and not key.startswith("machine ") and todo:
                self._note(f"{', '.join(hosts)} are on one machine ({key}): their models are called one after the "
                           f"other; give the models distinct machine: keys to call them at the same time")
        threads = [
            threading.Thread(target=self._run_machine, args=({m.id: by_model[m.id] for m in models}, _Occupancy()),
                             name=f"machine-{i}", daemon=True)
            for i, models in enumerate(machines.values())
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

    # -- one machine ---------------------------------------------------------------------------------

    def _run_machine(self, models: dict[str, tuple[list[Cell], list[Cell]]], occupancy: _Occupancy) -> None:
        """One machine's models in order; each probed, loaded once per set of load options, then called."""
        for model_id, (calls, kept) in models.items():
            if self.stop.is_set():
                return
            try:
                self._run_model(self.bench.model(model_id), calls, kept, occupancy)
            except Exception as e:  # whatever goes wrong costs this model's cells, never the host's other models
                error = _unexpected(e)
                self._note(f"{model_id}: {error.reason}")
                for cell in calls:
                    if cell.key not in self._finished:
                        self._record_failure(cell, error)

    def _run_model(self, model: ModelSpec, calls: list[Cell], kept: list[Cell], occupancy: _Occupancy) -> None:
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
        # Calls with the same load-time options go together, each group after a warm-up with its options, so
        # no timed call pays for a reload (Ollama reloads a model when num_ctx changes, server/sched.go).
        groups: dict[str, list[tuple[Cell, Request]]] = {}
        for cell in calls:
            request = request_for(self.bench, model, self.bench.task(cell.task_id))
            groups.setdefault(json.dumps(request.load_options(), sort_keys=True), []).append((cell, request))
        if calls and (unsent := provider.unsent(next(iter(groups.values()))[0][1])):
            self._note(f"{model.id}: {', '.join(unsent)} not sent: this server is not one known to accept them "
                       f"(llama.cpp, vLLM)")
        if not groups:
            before = self.cache.probe(model.id)
            self.cache.put_probe(ModelProbe(model_id=model.id, ok=True, details=details,
                                            warm_up_ms=before.warm_up_ms if before else None))
        for n, group in enumerate(groups.values()):
            if self.stop.is_set():
                return
            measured = None
            if self.bench.defaults.warm_up:
                self._prepare_while_loading()
                try:
                    measured = provider.warm_up(model.model, group[0][1].load_options())
                except ProviderError as e:
                    self._note(f"{model.id}: warm-up failed ({e.reason}); calling anyway")
                self._preparing.join()  # built once, by one thread, before any call makes a record
            if n == 0:
                details = details.model_copy(update=provider.placement(model.model))
                warm = measured
                if warm is None and (before := self.cache.probe(model.id)) is not None:
                    warm = before.warm_up_ms  # a run that loads nothing keeps the load time last measured
                self.cache.put_probe(ModelProbe(model_id=model.id, ok=True, details=details, warm_up_ms=warm))
            # The answers carry the load measured in *this* run, so the report keeps each measurement with
            # the answers it was made with (a rerun that finds the model resident does not overwrite it).
            self._call_all(provider, model, details, group, occupancy, measured)

    def _prepare_while_loading(self) -> None:
        """The first model load is the run's first long wait on a server: the record validators the calls
        need (built lazily, to start faster) and what the caller does after the run (while_loading) are
        prepared meanwhile, off the path to the first request and out of the calls' timings."""
        with self._lock:
            if self._preparing is not None:
                return
            self._preparing = threading.Thread(target=build_run_models, name="prepare-records", daemon=True)
        self._preparing.start()
        if self.while_loading is not None:
            threading.Thread(target=self.while_loading, name="while-loading", daemon=True).start()

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

    def _call_all(self, provider: Provider, model: ModelSpec, details: ModelDetails,
                  cells: list[tuple[Cell, Request]], occupancy: _Occupancy, warm_up_ms: float | None = None) -> None:
        """`concurrency_per_host` workers share this model's cells."""
        jobs: queue.Queue[tuple[Cell, Request]] = queue.Queue()
        for job in cells:
            jobs.put(job)

        def worker() -> None:
            while not self.stop.is_set():
                try:
                    cell, request = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    self._call(provider, model, details, cell, request, occupancy, warm_up_ms)
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

    def _call(self, provider: Provider, model: ModelSpec, details: ModelDetails, cell: Cell, request: Request,
              occupancy: _Occupancy, warm_up_ms: float | None = None) -> None:
        retries = self.bench.defaults.retries
        for attempt in range(retries + 1):
            if self.stop.is_set():
                return
            try:
                with occupancy.call() as shared:
                    completion = provider.complete(request)
                    busy = shared()
                break
            except ProviderError as e:
                # A proxy's 524 already cost ~100 s: one more try, not the full retry budget.
                limit = min(retries, 1) if e.kind == "proxy_timeout" else retries
                if e.transient and attempt < limit:
                    time.sleep(min(0.5 * 2**attempt, 4.0))
                    continue
                self._record_failure(cell, e)
                return
        answer = Answer(
            **completion.model_dump(exclude={"digest", "server_version", "machine_busy"}),
            machine_busy=busy,
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
        refresh: bool = False, on_event: Callable[[RunEvent], None] = lambda e: None,
        while_loading: Callable[[], None] | None = None) -> RunSummary:
    """Call every uncached cell (or every selected cell with refresh) once; returns the counts.
    ``while_loading`` runs in a thread of its own once the first model starts loading."""
    with cache.run_lock():
        return Runner(bench, cache, portable, on_event, while_loading).run(only=only, refresh=refresh)
