"""`make perf`: the scheduler and renderer measured against the fake Ollama server in tests/.

Prints, for each scenario, the measured wall time against the ideal schedule (the busiest host's model
loads plus its generations), and writes the figures to docs/tool-speed.md with the date and machine (the site lists
that page under About, as the generator's own speed, so that no reader takes it for model performance).
Scenarios a and b time a whole `bench run` process (start-up and imports included), as a user runs it.
Their tasks have no checks, so the post-run step (checks of the new answers, history) costs only the
history write, and the ideal schedule leaves it out; interpreter start and exit are counted in full.
  a. two hosts, 2 models, 4 tasks
  b. one host holding one model at a time (load 1 s), 2 models x 8 tasks
  c. a warm rerun (0 model calls) of 200 tasks x 3 models: the whole `make bench` (run, render, mkdocs build)
  d. `bench render` alone for 500 tasks x 4 models, and its peak memory
  e. cold checks: the real benchmark.yaml's four tasks x two models (tests/samples good and bad answers),
     every check run for real (sandboxed tests and shell scenarios), nothing cached, one answer after another
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ollama_server import FakeModel, FakeOllama  # noqa: E402

from generator import cache as cache_mod  # noqa: E402
from generator import config, results  # noqa: E402
from generator.run import run  # noqa: E402

GEN_S = 0.25  # simulated generation time of one answer
LOAD_S = 1.0


def _bench(path: Path, models: list[dict], n_tasks: int, **defaults) -> Path:
    data = {
        "title": "Perf",
        "defaults": {"options": {"temperature": 0.3, "seed": 1}, "timeout_s": 60, **defaults},
        "models": models,
        "tasks": [{"id": f"task-{i:03d}", "title": f"Task {i}", "prompt": f"Prompt {i}."} for i in range(n_tasks)],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _model(tag: str, load_s: float, gen_s: float = GEN_S) -> FakeModel:
    return FakeModel(tag, load_s=load_s, chunks=5, chunk_delay_s=gen_s / 5, answer=f"Answer from {tag}.")


def _timed_run(bench_path: Path, cache_dir: Path, *servers: FakeOllama) -> tuple[float, float]:
    """A whole `bench run` process, start-up and imports included, as a user runs it: its wall time, and how
    long after its start the first request reached a server (the fixed cost of start-up)."""
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    started = time.monotonic()  # the fake servers log time.monotonic()
    wall = _cmd([sys.executable, "-m", "generator", "run", "--config", str(bench_path), "--docs-dir",
                 str(bench_path.parent / "docs")], bench_path.parent, env)
    return wall, min(r.at for s in servers for r in s.log) - started


def _fill(bench_path: Path, cache_dir: Path) -> None:
    """Fill a cache in this process (not timed)."""
    bench = config.load(bench_path)
    store = cache_mod.AnswerCache.open(cache_dir)
    run(bench, store, results.Portable(None))
    store.close()


def scenario_a(tmp: Path) -> dict:
    with FakeOllama([_model("big:27b", LOAD_S)]) as h1, FakeOllama([_model("small:4b", LOAD_S / 2)]) as h2:
        # Two machines (a pod and a laptop); on loopback they would otherwise count as one machine.
        models = [{"id": "big", "model": "big:27b", "host": h1.url, "machine": "pod"},
                  {"id": "small", "model": "small:4b", "host": h2.url, "machine": "laptop"}]
        wall, first = _timed_run(_bench(tmp / "a.yaml", models, 4), tmp / "cache-a", h1, h2)
        assert len(h1.generations()) == 4 and len(h2.generations()) == 4
    ideal = max(LOAD_S + 4 * GEN_S, LOAD_S / 2 + 4 * GEN_S)
    return {"name": "a. two hosts, 2 models x 4 tasks", "wall_s": wall, "ideal_s": ideal,
            "extra": f"first request {first:.2f} s after the process started"}


def scenario_b(tmp: Path) -> dict:
    with FakeOllama([_model("big:27b", LOAD_S), _model("small:4b", LOAD_S)], one_model_at_a_time=True) as host:
        models = [{"id": "big", "model": "big:27b", "host": host.url},
                  {"id": "small", "model": "small:4b", "host": host.url}]
        wall, first = _timed_run(_bench(tmp / "b.yaml", models, 8), tmp / "cache-b", host)
        loads = host.loads
    ideal = 2 * LOAD_S + 16 * GEN_S
    return {"name": "b. one host, one model in memory, 2 models x 8 tasks", "wall_s": wall, "ideal_s": ideal,
            "extra": f"{loads} model loads; first request {first:.2f} s after the process started"}


def _site(tmp: Path, name: str) -> Path:
    """A project folder with mkdocs.yml and site_src/ like the repo's."""
    project = tmp / name
    project.mkdir()
    (project / "mkdocs.yml").write_text((ROOT / "mkdocs.yml").read_text())
    os.symlink(ROOT / "site_src", project / "site_src")
    os.symlink(ROOT / "generator", project / "generator")
    return project


def _cmd(args: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def scenario_c(tmp: Path) -> dict:
    project = _site(tmp, "c")
    env = {**os.environ, "BENCH_CACHE_DIR": str(project / "cache"), "PYTHONPATH": str(ROOT)}
    tags = ["m1:1b", "m2:2b", "m3:3b"]
    with FakeOllama([FakeModel(t, answer=f"Answer from {t}.\n\n```python\nprint(1)\n```") for t in tags]) as host:
        models = [{"id": t.split(":")[0], "model": t, "host": host.url} for t in tags]
        _bench(project / "benchmark.yaml", models, 200, warm_up=False)
        bench = [sys.executable, "-m", "generator"]
        _cmd(bench + ["run"], project, env)  # fill the cache (not timed)
        calls = len(host.generations())
        start = time.perf_counter()
        _cmd(bench + ["run"], project, env)
        _cmd(bench + ["render"], project, env)
        _cmd([sys.executable, "-m", "mkdocs", "build", "--strict", "-q"], project, env)
        wall = time.perf_counter() - start
        assert len(host.generations()) == calls == 600
    return {"name": "c. warm make bench, 200 tasks x 3 models (0 calls)", "wall_s": wall, "target_s": 5.0}


def scenario_d(tmp: Path) -> dict:
    project = _site(tmp, "d")
    cache_dir = project / "cache"
    tags = ["m1:1b", "m2:2b", "m3:3b", "m4:4b"]
    with FakeOllama([FakeModel(t, answer=f"Answer from {t}.\n\n```python\nprint(1)\n```") for t in tags]) as host:
        models = [{"id": t.split(":")[0], "model": t, "host": host.url} for t in tags]
        bench_path = _bench(project / "benchmark.yaml", models, 500, warm_up=False, concurrency_per_host=4)
        _fill(bench_path, cache_dir)
    probe = (
        "import resource, sys, time; t = time.perf_counter(); from generator.cli import main; "
        "code = main(['render']); "
        "u = resource.getrusage(resource.RUSAGE_SELF); "
        "print(time.perf_counter() - t, u.ru_maxrss, u.ru_utime + u.ru_stime)"
    )
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    inner, rss_kb, cpu = out.split()
    start = time.perf_counter()
    _cmd([sys.executable, "-m", "generator", "render"], project, env)  # warm docs/: nothing changes
    again = time.perf_counter() - start
    return {"name": "d. bench render, 500 tasks x 4 models", "wall_s": float(inner), "target_s": 1.0,
            "extra": f"CPU {float(cpu):.2f} s (the wall time counts other processes' load on a shared machine); "
                     f"peak RSS {int(rss_kb) / 1024:.0f} MB (target 300 MB); re-render with nothing changed "
                     f"{again:.2f} s as a whole process"}


def scenario_e(tmp: Path) -> dict:
    from generator.evaluate import objective_checks

    bench = config.load(ROOT / "benchmark.yaml")
    answers = [(task, (ROOT / "tests" / "samples" / task.id / f"{kind}.md").read_text(encoding="utf-8"))
               for task in bench.tasks for kind in ("good", "bad")]
    per_task: dict[str, float] = {}
    start = time.perf_counter()
    for task, text in answers:
        began = time.perf_counter()
        objective_checks(task, text)
        per_task[task.id] = per_task.get(task.id, 0.0) + time.perf_counter() - began
    wall = time.perf_counter() - start
    slowest = ", ".join(f"{task} {seconds:.1f} s" for task, seconds in sorted(per_task.items(), key=lambda x: -x[1]))
    return {"name": "e. cold checks, 4 tasks x 2 models (real checks in the sandbox)", "wall_s": wall,
            "target_s": 30.0, "extra": f"per task (2 answers): {slowest}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["a", "b", "c", "d", "e"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; the median is reported")
    parser.add_argument("--write", default=str(ROOT / "docs" / "tool-speed.md"),
                        help="where to write the figures ('' to skip)")
    args = parser.parse_args()
    scenarios = {"a": scenario_a, "b": scenario_b, "c": scenario_c, "d": scenario_d, "e": scenario_e}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only:
            runs = []
            for i in range(args.repeat):
                (Path(tmp) / f"{key}{i}").mkdir()
                runs.append(scenarios[key](Path(tmp) / f"{key}{i}"))
            runs.sort(key=lambda r: r["wall_s"])
            row = runs[len(runs) // 2]
            if len(runs) > 1:
                spread = f"median of {len(runs)}: {runs[0]['wall_s']:.2f}-{runs[-1]['wall_s']:.2f} s"
                row["extra"] = f"{row['extra']}; {spread}" if row.get("extra") else spread
            if "ideal_s" in row:
                row["verdict"] = f"{row['wall_s'] / row['ideal_s']:.3f} x ideal (target <= 1.05)"
            else:
                row["verdict"] = f"{'within' if row['wall_s'] <= row['target_s'] else 'OVER'} target {row['target_s']:g} s"
            rows.append(row)
            print(f"{row['name']}: {row['wall_s']:.2f} s; {row['verdict']}"
                  + (f"; ideal {row['ideal_s']:.2f} s" if "ideal_s" in row else "")
                  + (f"; {row['extra']}" if row.get("extra") else ""), flush=True)
    if args.write:
        cpu = platform.processor() or platform.machine()
        lines = [
            "# Generator speed",
            "",
            "How fast this tool itself runs (scheduling, rendering, building the site) against a simulated "
            "server. These are not the models' timings: those are on the [summary](big-brain-benchmark.md).",
            "",
            f"Measured by `make perf` (benchmarks/perf.py) on {datetime.now(timezone.utc):%Y-%m-%d}, "
            f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, against the simulated "
            f"Ollama server of the tests (generation {GEN_S} s per answer, load {LOAD_S} s).",
            "",
            "| scenario | wall time | ideal / target | result |",
            "|---|---|---|---|",
        ]
        for r in rows:
            ideal = f"{r['ideal_s']:.2f} s" if "ideal_s" in r else f"{r['target_s']:g} s"
            lines.append(f"| {r['name']} | {r['wall_s']:.2f} s | {ideal} | {r['verdict']}"
                         + (f"; {r['extra']}" if r.get("extra") else "") + " |")
        Path(args.write).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()
