"""`make demo`: the real benchmark.yaml answered by the simulated Ollama server, built into demo-site/.

Big Brain answers each task with tests/samples/<task>/good.md and Local with bad.md (with made-up timings),
so the demo shows every part of the site: passing and failing checks, an objectively clear winner, the
judge, thinking and a cut answer. Nothing here is real model output, and every page says so: the demo's
mkdocs.yml sets `extra.notice`, which the theme shows on every page and the build hook puts at the top of
every generated page. The demo has its own cache, docs/ and site/ in demo-site/ (gitignored); the real
docs/ and cache are never touched.

    make demo                                  # build demo-site/site
    .venv/bin/mkdocs serve -f demo-site/mkdocs.yml
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ollama_server import FakeModel, FakeOllama  # noqa: E402

from generator import cli  # noqa: E402

DEMO = ROOT / "demo-site"
NOTICE = "SIMULATED — not real model output. These answers come from the test server in tests/, not from a model."


def _samples() -> dict[str, dict[str, str]]:
    out = {}
    for folder in sorted((ROOT / "tests" / "samples").iterdir()):
        out[folder.name] = {kind: (folder / f"{kind}.md").read_text() for kind in ("good", "bad")}
    return out


def _answerer(prompts: dict[str, str], samples: dict[str, dict[str, str]], kind: str):
    """Answer a task's prompt with its sample; as the judge, prefer whichever answer is the good sample."""

    def answer(prompt: str) -> str:
        if "=== Answer A ===" in prompt:
            first = prompt.split("=== Answer A ===", 1)[1].split("=== End of answer A ===", 1)[0]
            good_first = any(s["good"].strip() in first for s in samples.values())
            vote = "A" if good_first else "B"
            return f"(simulated judge) The answer that passes its tests is better.\nVERDICT: {vote}"
        task_id = next((t for p, t in prompts.items() if p.strip() == prompt.strip()), None)
        if task_id is None or task_id not in samples:
            return f"(simulated) No sample answer for: {prompt[:60]}"
        return samples[task_id][kind]

    return answer


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "docs").mkdir(parents=True)
    shutil.copytree(ROOT / "site_src", DEMO / "site_src")
    bench = yaml.safe_load((ROOT / "benchmark.yaml").read_text())
    prompts = {t["prompt"]: t["id"] for t in bench["tasks"]}
    samples = _samples()

    mkdocs = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    mkdocs["hooks"] = [str(ROOT / "generator" / "mkdocs_hook.py")]
    mkdocs.setdefault("extra", {})["notice"] = NOTICE
    (DEMO / "mkdocs.yml").write_text(yaml.safe_dump(mkdocs, sort_keys=False, allow_unicode=True))

    big = FakeModel("gemma3:27b", digest="sha256:" + "b" * 64, parameter_size="27.4B",
                    answer=_answerer(prompts, samples, "good"), chunks=12, chunk_delay_s=0.08,
                    first_token_delay_s=0.15, load_s=0.5)
    local = FakeModel("gemma3:4b", digest="sha256:" + "a" * 64, parameter_size="4.3B",
                      answer=_answerer(prompts, samples, "bad"), chunks=12, chunk_delay_s=0.03,
                      first_token_delay_s=0.05, thinking="(simulated thinking) Keep it short; the user wants code.")
    with FakeOllama([big, local]) as server:
        bench["title"] = f"SIMULATED: {bench['title']}"
        for model in bench["models"]:
            model["host"] = server.url
            model.pop("headers", None)
        bench["models"][1]["think"] = True
        bench["tasks"][1].setdefault("options", {})["num_predict"] = 300  # so one answer shows as cut
        (DEMO / "benchmark.yaml").write_text(yaml.safe_dump(bench, sort_keys=False, allow_unicode=True))
        cache = DEMO / ".cache" / "bench"  # where the build hook looks by default
        os.environ["BENCH_CACHE_DIR"] = str(cache)
        common = ["--config", str(DEMO / "benchmark.yaml"), "--cache-dir", str(cache), "--docs-dir",
                  str(DEMO / "docs")]
        local.done_reason = "length"  # the server reports this task's answer as cut at num_predict
        code = cli.main(["run", *common, "--only", bench["tasks"][1]["id"]])
        local.done_reason = "stop"
        code = code or cli.main(["run", *common])
        if code:
            return code

    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(DEMO / "mkdocs.yml"),
                             "-d", str(DEMO / "site")], env=env)
    if result.returncode == 0:
        print(f"demo site: {DEMO / 'site'}  (serve: .venv/bin/mkdocs serve -f demo-site/mkdocs.yml)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
