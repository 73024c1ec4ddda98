"""The whole pipeline against a real server: llama.cpp's (xllamacpp) serving SmolLM2-135M from a PyPI package.

It runs in `make test` and in CI; a missing package fails it under CI=true instead of skipping it. Kept short:
two tasks with small num_predict (a few seconds of decoding on 2 cores).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import bench_cli, free_port
from llama_server import SMOLLM2, Missing, llama_server, model_file

from generator import cache as cache_mod
from generator import config, plan


@pytest.fixture(scope="session")
def smollm2_url():
    try:
        with llama_server(model_file(*SMOLLM2), "smollm2:135m", n_ctx=1024) as url:
            yield url
    except Missing as e:
        if os.environ.get("CI"):
            pytest.fail(f"the real-server test must run in CI: {e}")
        pytest.skip(str(e))


def _bench(path, url):
    data = {
        "title": "Real llama.cpp",
        "defaults": {"options": {"temperature": 0, "seed": 42, "num_predict": 48, "top_k": 40, "num_ctx": 1024},
                     "timeout_s": 60},
        "models": [
            {"id": "smol", "provider": "openai", "model": "smollm2:135m", "base_url": f"{url}/v1"},
            {"id": "absent", "provider": "openai", "model": "qwen3:0.6b", "base_url": f"{url}/v1"},
            {"id": "down", "provider": "openai", "model": "smollm2:135m",
             "base_url": f"http://127.0.0.1:{free_port()}/v1", "machine": "elsewhere"},
        ],
        "tasks": [
            {"id": "french", "title": "French", "prompt": "Say hello in French.", "options": {"num_predict": 6}},
            {"id": "sum", "title": "Sum", "prompt": "What is 2 + 3? Answer with the number only."},
        ],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_pipeline_against_llama_cpp(smollm2_url, isolated, capsys):
    bench = _bench(isolated / "benchmark.yaml", smollm2_url)
    assert bench_cli("validate", "--config", str(bench)) == 0
    warned = capsys.readouterr().err
    assert "models.smol: num_ctx cannot be passed through the OpenAI API and is not sent" in warned

    assert bench_cli("run", "--config", str(bench)) == 0
    assert "6 cells: 0 cached, 2 called, 4 failed" in capsys.readouterr().out
    loaded = config.load(bench)
    store = cache_mod.AnswerCache.open(isolated / "cache")
    smol = loaded.model("smol")
    answers = {t.id: store.answer(plan.cell_key(loaded, smol, t)) for t in loaded.tasks}
    for answer in answers.values():
        assert answer.text.strip()  # a real model wrote something
        assert answer.tokens_per_s_source == "server" and answer.tokens_per_s > 1  # llama.cpp's timings read
        assert answer.eval_ms > 0 and answer.prompt_eval_ms > 0 and answer.eval_count > 0
        assert 0 < answer.ttft_ms < answer.latency_ms
        assert answer.prompt_cached_count == 0  # cache_prompt: false, so TTFT includes the whole prompt
    assert answers["french"].done_reason == "length" and answers["french"].eval_count == 6
    probe = store.probe("smol")
    assert probe.details.server == "llama.cpp" and probe.details.context_length == 1024
    store.close()

    capsys.readouterr()
    assert bench_cli("run", "--config", str(bench)) == 0  # the answers are cached: nothing is called
    assert "6 cells: 2 cached, 0 called, 4 failed" in capsys.readouterr().out

    assert bench_cli("status", "--config", str(bench), "--json") == 0
    rows = {(r["task"], r["model"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("sum", "absent")]["reason"] == (
        f"model qwen3:0.6b is not loaded at {smollm2_url}/v1: that llama.cpp server serves smollm2:135m only")
    assert rows[("sum", "down")]["reason"].startswith("connection refused by http://127.0.0.1:")

    assert bench_cli("render", "--config", str(bench)) == 0
    results = json.loads((isolated / "docs" / "results.json").read_text())
    cells = {(t["id"], c["model"]): c for t in results["tasks"] for c in t["cells"]}
    assert cells[("french", "smol")]["done_reason"] == "length"
    assert cells[("sum", "smol")]["tokens_per_s_source"] == "server"
    assert "Cut: the answer hit the token limit" in (isolated / "docs" / "tasks" / "french.md").read_text()
