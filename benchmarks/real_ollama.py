"""`make real-ollama`: the whole `bench run` against a real Ollama server you point it at, checked.

    make real-ollama OLLAMA_HOST=127.0.0.1:11434 MODELS="smollm2:135m gemma3:270m"

It writes a benchmark of examples/tiny/'s tasks for those models (num_ctx pinned, plus two entries that must
be refused: a tag the server does not have and, when the first model cannot think, that model with
`think: true`) into a temporary folder, unloads the models, then runs `bench run` twice as processes and
checks what issue 12 asks of a real server:
- the first run answers every cell; each answer has TTFT < latency and the server's own decode rate
  (`tokens_per_s_source: server`); /api/ps placement is recorded;
- the absent tag and the impossible `think` are reported with their reasons, before any call;
- the second run calls nothing.
It prints the figures (cells, wall time, load and tokens/s per model) and exits 1 when a check fails.
Nothing is written into the project; answers stay in the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator import cache as cache_mod  # noqa: E402
from generator import config  # noqa: E402
from generator.errors import ProviderError  # noqa: E402
from generator.machines import ollama_host  # noqa: E402
from generator.plan import cell_key  # noqa: E402
from generator.providers import OllamaProvider  # noqa: E402


def _bench(host: str, models: list[str], think_model: str | None) -> dict:
    tiny = yaml.safe_load((ROOT / "examples" / "tiny" / "benchmark.yaml").read_text())
    entries = [{"id": f"m{i}", "label": tag, "model": tag, "host": host} for i, tag in enumerate(models, 1)]
    entries.append({"id": "absent", "model": "no-such-model:1b", "host": host})
    if think_model:
        entries.append({"id": "thinks", "model": think_model, "host": host, "think": True})
    return {"title": f"Real Ollama at {host}", "defaults": {"options": {"temperature": 0, "seed": 42, "num_predict": 96,
                                                                          "num_ctx": 2048}, "timeout_s": 300},
            "models": entries, "tasks": tiny["tasks"]}


def _run(folder: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "BENCH_CACHE_DIR": str(folder / "cache"), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "generator", "run", "--docs-dir", str(folder / "docs")],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
    return done, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434")
    parser.add_argument("--models", nargs="+", required=True, metavar="TAG")
    args = parser.parse_args()
    host = ollama_host(args.host)
    provider = OllamaProvider(config.ModelSpec(id="check", model=args.models[0], host=host), timeout_s=120)
    try:
        details = provider.probe(args.models[0])  # the run's own probe: version, capabilities
    except ProviderError as e:
        print(f"{e.reason}; start Ollama there, or pass OLLAMA_HOST=host:port and MODELS it has")
        return 2
    version, caps = details.server_version, details.capabilities
    think_model = args.models[0] if caps is not None and "thinking" not in caps else None
    for tag in args.models:  # unloaded, so the first run measures a real load
        provider._client.generate(model=tag, keep_alive=0)
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            problems.append(what)

    with tempfile.TemporaryDirectory(prefix="real-ollama-") as tmp:
        folder = Path(tmp)
        bench = _bench(host, args.models, think_model)
        (folder / "benchmark.yaml").write_text(yaml.safe_dump(bench, sort_keys=False))
        first, wall = _run(folder)
        print(f"Ollama {version} at {host}; first run {wall:.1f} s: {first.stdout.strip()}")
        print("  " + first.stderr.strip().replace("\n", "\n  "))
        store = cache_mod.AnswerCache.open(folder / "cache")
        loaded = config.load(folder / "benchmark.yaml")
        n_tasks = len(loaded.tasks)
        rows = []
        for model in loaded.models[: len(args.models)]:
            answers = [store.answer(cell_key(loaded, model, t)) for t in loaded.tasks]
            got = [a for a in answers if a is not None]
            check(len(got) == n_tasks, f"{model.model}: {len(got)} of {n_tasks} cells answered")
            check(all(a.ttft_ms is not None and a.ttft_ms < a.latency_ms for a in got),
                  f"{model.model}: TTFT < latency for every answer")
            check(all(a.tokens_per_s_source == "server" for a in got), f"{model.model}: server decode rate read")
            probe = store.probe(model.id)
            check(probe is not None and probe.details is not None and probe.details.size_bytes is not None,
                  f"{model.model}: /api/ps placement recorded")
            rates = [a.tokens_per_s for a in got if a.tokens_per_s]
            rows.append((model.model, probe.warm_up_ms if probe else None, statistics.median(rates) if rates else None,
                         statistics.median([a.latency_ms for a in got]) if got else None))
        check("model no-such-model:1b is not on" in first.stderr, "absent tag reported with its reason")
        if think_model:
            check(f"{think_model} does not support thinking" in first.stderr, "think on a model without it reported")
        second, wall2 = _run(folder)
        cells = len(loaded.models) * n_tasks
        answered = len(args.models) * n_tasks
        check(f"{cells} cells: {answered} cached, 0 called" in second.stdout,
              f"a rerun calls nothing ({second.stdout.strip()}, {wall2:.1f} s)")
    print("\n| model | load (warm-up) | median tokens/s (server) | median latency |\n|---|---|---|---|")
    for tag, load, rate, latency in rows:
        print(f"| {tag} | {load:.0f} ms | {rate:.1f} | {latency:.0f} ms |" if load and rate and latency
              else f"| {tag} | - | - | - |")
    print(f"\n{len(problems)} check(s) failed" if problems else "\nevery check passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
