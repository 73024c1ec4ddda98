"""Stage 2, plan: the cells (task, model), each with its cache key and whether the cache holds its answer.

The cache key hashes exactly what determines the answer: the model entry's id, provider kind and tag, the
system prompt, the messages, the options the provider can send (an OpenAI-compatible API has no num_ctx) and
the think flag. It leaves out the host (a rented GPU's URL changes with every pod), the titles, the timeout
and every other task.
"""

from __future__ import annotations

import json

from .cache import AnswerCache
from .config import Benchmark, ModelSpec, TaskSpec
from .providers import Request, passable_options
from .records import Cell, sha256

KEY_VERSION = 1


def request_for(bench: Benchmark, model: ModelSpec, task: TaskSpec) -> Request:
    """The request sent for one cell."""
    options = passable_options(model.provider, bench.options_for(model, task).model_dump(exclude_none=True))
    # The OpenAI API has no think flag: the server decides, so it is neither sent nor in the key.
    think = model.think if model.provider == "ollama" else None
    return Request(model=model.model, prompt=task.prompt, system=task.system, options=options, think=think)


def cache_key(model: ModelSpec, request: Request) -> str:
    """Hash of everything that determines the answer, and nothing else."""
    material = {
        "v": KEY_VERSION,
        "model_id": model.id,
        "provider": model.provider,
        "model": request.model,
        "messages": request.messages(),
        "options": request.options,
        "think": request.think,
    }
    return sha256(json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def cell_key(bench: Benchmark, model: ModelSpec, task: TaskSpec) -> str:
    return cache_key(model, request_for(bench, model, task))


def make_plan(bench: Benchmark, cache: AnswerCache) -> list[Cell]:
    """Every cell in task order, then model order, with its state in the cache."""
    cells = []
    for task in bench.tasks:
        for model in bench.models:
            key = cell_key(bench, model, task)
            if cache.answer(key) is not None:
                cells.append(Cell(task_id=task.id, model_id=model.id, key=key, state="cached"))
            elif (failure := cache.failure(key)) is not None:
                cells.append(Cell(task_id=task.id, model_id=model.id, key=key, state="failed", reason=failure.reason))
            else:
                cells.append(Cell(task_id=task.id, model_id=model.id, key=key, state="missing"))
    return cells
