"""The OpenAI-compatible provider: streamed answers with measurements, the key from the environment only."""

from __future__ import annotations

import json

import yaml
from conftest import bench_cli, write_bench
from openai_server import FakeOpenAI

from generator import cache as cache_mod
from generator import config, plan

KEY = "sk-test-marker-7f3a9c"


def _mixed_bench(isolated, ollama_url, openai_url):
    path = write_bench(isolated / "benchmark.yaml", big_host=ollama_url, tasks=[
        {"id": "t1", "title": "T1", "prompt": "First question."}, {"id": "t2", "title": "T2", "prompt": "Second."}])
    data = yaml.safe_load(path.read_text())
    data["models"][0] = {"id": "cloud", "label": "Cloud", "provider": "openai", "model": "cloud-model",
                         "base_url": openai_url, "api_key_env": "CLOUD_KEY"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_mixed_benchmark_calls_both_providers_once_per_cell(server, isolated, monkeypatch):
    monkeypatch.setenv("CLOUD_KEY", KEY)
    with FakeOpenAI({"cloud-model": "A cloud answer with six words."}, api_key=KEY) as cloud:
        bench = _mixed_bench(isolated, server.url, cloud.url)
        assert bench_cli("run", "--config", str(bench)) == 0
        assert len(cloud.requests) == 2 and len(server.generations("gemma3:4b")) == 2
        assert cloud.requests[0]["max_tokens"] == 256 and cloud.requests[0]["seed"] == 42
        assert bench_cli("run", "--config", str(bench)) == 0
        assert len(cloud.requests) == 2
    loaded = config.load(bench)
    store = cache_mod.AnswerCache.open(isolated / "cache")
    answer = store.answer(plan.cell_key(loaded, loaded.model("cloud"), loaded.tasks[0]))
    assert answer.text == "A cloud answer with six words."
    assert answer.done_reason == "stop" and answer.eval_count == 6 and answer.ttft_ms is not None
    stored = "".join(p.read_bytes().decode("latin-1") for p in (isolated / "cache").rglob("*") if p.is_file())
    assert KEY not in stored


def test_wrong_key_is_reported_without_the_key(server, isolated, monkeypatch, capsys):
    monkeypatch.setenv("CLOUD_KEY", "sk-wrong-value-123456")
    with FakeOpenAI({"cloud-model": "x"}, api_key=KEY) as cloud:
        bench = _mixed_bench(isolated, server.url, cloud.url)
        bench_cli("run", "--config", str(bench))
        capsys.readouterr()
        bench_cli("status", "--config", str(bench), "--json")
    rows = json.loads(capsys.readouterr().out)
    cloud_rows = [r for r in rows if r["model"] == "cloud"]
    assert cloud_rows[0]["reason"] == f"HTTP 401 from {cloud.url}: Incorrect API key provided; check api_key_env"
    assert "sk-wrong" not in json.dumps(rows)


def test_unknown_cloud_model_and_server_down(server, isolated, monkeypatch, capsys):
    with FakeOpenAI({"other-model": "x"}) as cloud:
        bench = _mixed_bench(isolated, server.url, cloud.url)
        bench_cli("run", "--config", str(bench))
    capsys.readouterr()
    bench_cli("status", "--config", str(bench), "--json")
    rows = [r for r in json.loads(capsys.readouterr().out) if r["model"] == "cloud"]
    assert rows[0]["reason"] == f"model cloud-model is not served at {cloud.url} (it lists 1 others)"
    bench_cli("run", "--config", str(bench))  # the server is gone now
    capsys.readouterr()
    bench_cli("status", "--config", str(bench), "--json")
    rows = [r for r in json.loads(capsys.readouterr().out) if r["model"] == "cloud"]
    assert rows[0]["reason"] == f"connection refused by {cloud.url}: is the server running there?"


def test_openai_fields_only_for_openai_models():
    from generator.errors import ConfigError
    import pytest

    text = "title: T\nmodels: [{id: a, model: m, base_url: 'http://x/v1'}]\ntasks: [{id: t, title: t, prompt: p}]\n"
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "b.yaml", {})
    assert "base_url and api_key_env are for provider: openai" in caught.value.problems[0]


def test_mixed_benchmark_renders_and_builds_strict(server, isolated, monkeypatch):
    from site_helpers import Page, mkdocs_build, project

    monkeypatch.setenv("CLOUD_KEY", KEY)
    with FakeOpenAI({"cloud-model": "The cloud's answer."}, api_key=KEY) as cloud:
        bench = _mixed_bench(isolated, server.url, cloud.url)
        assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    built = mkdocs_build(project(isolated), isolated / "site")
    assert built.returncode == 0, built.stderr
    page = Page((isolated / "site" / "tasks" / "t1" / "index.html").read_text())
    assert any(code.strip() == "The cloud's answer." for code in page.codes)
    site_text = "".join(p.read_text(errors="replace") for p in (isolated / "site").rglob("*.html"))
    assert KEY not in site_text and KEY not in (isolated / "docs" / "results.json").read_text()
