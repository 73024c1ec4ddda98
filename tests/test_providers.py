"""What the providers send and read, against fakes that behave like the real servers (tests/recordings/)."""

from __future__ import annotations


import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench
from openai_server import FakeOpenAI

from generator import cache as cache_mod
from generator import config, plan


def _edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _answers(bench_path, cache_dir, model_id):
    loaded = config.load(bench_path)
    store = cache_mod.AnswerCache.open(cache_dir)
    model = loaded.model(model_id)
    return {t.id: store.answer(plan.cell_key(loaded, model, t)) for t in loaded.tasks}, store


# -- Ollama ------------------------------------------------------------------------------------------------


def test_warm_up_loads_with_the_timed_calls_load_options(isolated):
    with FakeOllama([FakeModel("gemma3:4b", load_s=0.3)]) as server:
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
            {"id": "a", "title": "A", "prompt": "One."}, {"id": "b", "title": "B", "prompt": "Two."},
            {"id": "c", "title": "C", "prompt": "Three.", "options": {"num_ctx": 4096}}])
        _edit(bench, lambda d: (d["models"].pop(0), d["defaults"]["options"].update(num_ctx=8192)))
        assert bench_cli("run", "--config", str(bench)) == 0
        warm_ups = [r.body for r in server.log if r.path == "/api/generate"]
        assert [w["options"] for w in warm_ups] == [{"num_ctx": 8192}, {"num_ctx": 4096}]
        assert server.loads == 2  # one per num_ctx, each in a warm-up: no timed call paid for a load
    answers, store = _answers(bench, isolated / "cache", "local")
    assert all(a.load_ms < 50 for a in answers.values())
    details = store.probe("local").details
    assert details.context_length == 8192 and details.size_bytes == details.vram_bytes == 3_300_000_000


def test_a_model_partly_on_cpu_is_recorded(isolated):
    with FakeOllama([FakeModel("gemma3:4b", size=6_000_000_000, size_vram=2_000_000_000)]) as server:
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
            {"id": "a", "title": "A", "prompt": "One."}])
        _edit(bench, lambda d: (d["models"].pop(0), d["defaults"]["options"].update(num_ctx=2048)))
        bench_cli("run", "--config", str(bench))
    details = cache_mod.AnswerCache.open(isolated / "cache").probe("local").details
    assert (details.size_bytes, details.vram_bytes) == (6_000_000_000, 2_000_000_000)
    assert bench_cli("render", "--config", str(bench)) == 0
    summary = (isolated / "docs" / "big-brain-benchmark.md").read_text()
    assert "context 2048; 6\\.0 GB, 2\\.0 GB in GPU memory \\(partly on CPU\\)" in summary


def test_think_on_a_model_without_thinking_is_reported_before_any_call(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    _edit(bench, lambda d: d["models"][1].update(think=True))
    bench_cli("run", "--config", str(bench))
    assert server.generations("gemma3:4b") == []
    assert ("note local: gemma3:4b does not support thinking (its capabilities: completion); remove think: true "
            "from model local or choose a thinking model") in capsys.readouterr().err


def test_an_ollama_without_capabilities_is_asked_anyway(isolated, capsys):
    # Ollama 0.5.4 (the recorded build) lists no capabilities and ignores think: nothing to refuse in advance.
    with FakeOllama([FakeModel("smollm2:135m")], version="0.5.4-ipexllm-20250407") as server:
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
            {"id": "a", "title": "A", "prompt": "One."}])
        _edit(bench, lambda d: (d["models"].pop(0), d["models"][0].update(model="smollm2:135m", think=True),
                                d["defaults"]["options"].update(num_ctx=2048)))
        assert bench_cli("run", "--config", str(bench)) == 0
    assert "1 cells: 0 cached, 1 called, 0 failed" in capsys.readouterr().out
    details = cache_mod.AnswerCache.open(isolated / "cache").probe("local").details
    assert details.capabilities is None and details.context_length is None
    assert details.server_version.startswith("0.5.4")
    # Its /api/ps has no context_length: the page gives the context the calls asked for, and says so.
    assert bench_cli("render", "--config", str(bench)) == 0
    summary = (isolated / "docs" / "big-brain-benchmark.md").read_text()
    assert "context 2048 asked \\(not reported by the server\\)" in summary


def test_tags_match_as_ollama_matches_them(isolated, capsys):
    with FakeOllama([FakeModel("gemma3:latest"), FakeModel("SmolLM2:135m")]) as server:
        bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
            {"id": "a", "title": "A", "prompt": "One."}])
        _edit(bench, lambda d: (d["models"][0].update(model="library/gemma3"),
                                d["models"][1].update(model="smollm2:135M")))
        assert bench_cli("run", "--config", str(bench)) == 0
    assert "2 cells: 0 cached, 2 called, 0 failed" in capsys.readouterr().out


def test_a_host_written_as_ollama_host_is_written(server, isolated, monkeypatch, capsys):
    # OLLAMA_HOST=0.0.0.0:11434 is how Ollama's FAQ has the server listen everywhere; the client reaches it.
    monkeypatch.setenv("OLLAMA_HOST", server.url.replace("http://127.0.0.1", "0.0.0.0"))
    bench = write_bench(isolated / "benchmark.yaml", big_host="${OLLAMA_HOST}", tasks=[
        {"id": "a", "title": "A", "prompt": "One."}])
    assert bench_cli("run", "--config", str(bench)) == 0
    assert "2 cells: 0 cached, 2 called, 0 failed" in capsys.readouterr().out


def test_a_proxy_524_is_retried_once(isolated, capsys):
    with FakeOllama([FakeModel("gemma3:4b", fault="status", fault_status=524, fault_body="<html>524: A timeout "
                                                                                        "occurred</html>")]) as s:
        bench = write_bench(isolated / "benchmark.yaml", big_host=s.url, tasks=[
            {"id": "a", "title": "A", "prompt": "One."}])
        _edit(bench, lambda d: d["models"].pop(0))
        bench_cli("run", "--config", str(bench))
        assert len(s.generations()) == 2  # retries: 2 in the defaults, but a 524 is tried twice at most
        assert (f"HTTP 524 from {s.url}: the proxy gave up after about 100 s with nothing sent (the model may "
                f"still be loading)") in capsys.readouterr().err
        s.models["gemma3:4b"].fault_times = 3  # the next run: a 524, then an answer
        assert bench_cli("run", "--config", str(bench)) == 0
    assert "1 called, 0 failed" in capsys.readouterr().out


# -- OpenAI-compatible ---------------------------------------------------------------------------------------


def _openai_bench(isolated, url, model="smollm2:135m", options=None):
    return write_bench(isolated / "benchmark.yaml", big_host="http://localhost:1", tasks=[
        {"id": "a", "title": "A", "prompt": "Say hello."}, {"id": "b", "title": "B", "prompt": "Say hello twice."}],
        extra={"models": [{"id": "srv", "provider": "openai", "model": model, "base_url": url}],
               "defaults": {"options": options or {}, "timeout_s": 10}})


OPTIONS = {"temperature": 0, "seed": 1, "num_predict": -1, "top_k": 20, "min_p": 0.05, "repeat_penalty": 1.1,
           "num_ctx": 4096}


def test_llama_cpp_gets_its_sampling_fields_and_no_prompt_cache(isolated):
    with FakeOpenAI({"smollm2:135m": "Bonjour tout le monde"}, flavor="llama.cpp", reasoning="Hmm.",
                    decode_tps=50.0) as server:
        bench = _openai_bench(isolated, server.url, options=OPTIONS)
        assert bench_cli("run", "--config", str(bench)) == 0
        sent = server.requests[0]
    assert sent["top_k"] == 20 and sent["min_p"] == 0.05 and sent["repeat_penalty"] == 1.1
    assert sent["cache_prompt"] is False and sent["stream_options"] == {"include_usage": True}
    assert "max_tokens" not in sent and "num_ctx" not in sent  # num_predict -1: no limit
    answers, _ = _answers(bench, isolated / "cache", "srv")
    for a in answers.values():
        assert a.text == "Bonjour tout le monde" and a.thinking == "Hmm."
        assert a.tokens_per_s == 50.0 and a.tokens_per_s_source == "server" and a.eval_ms == 80.0
        assert a.prompt_cached_count == 0 and a.eval_count == 4


def test_a_cloud_api_gets_standard_fields_only_and_a_measured_rate(isolated, capsys):
    with FakeOpenAI({"gpt-x": "One two three"}) as server:
        bench = _openai_bench(isolated, server.url, model="gpt-x", options={**OPTIONS, "num_predict": 64})
        assert bench_cli("run", "--config", str(bench)) == 0
        sent = server.requests[0]
    assert {k for k in sent if k not in ("model", "messages", "stream", "stream_options")} == {
        "temperature", "seed", "max_tokens"}
    assert "note srv: min_p, repeat_penalty, top_k not sent: this server is not one known to accept them " \
           "(llama.cpp, vLLM)" in capsys.readouterr().err
    answers, _ = _answers(bench, isolated / "cache", "srv")
    assert answers["a"].tokens_per_s_source == "stream"


def test_ollama_v1_reasoning_and_latest_ids(isolated):
    with FakeOpenAI({"qwen3": "Four."}, flavor="ollama", reasoning="2+2 is 4.") as server:
        bench = _openai_bench(isolated, server.url, model="qwen3")
        assert bench_cli("run", "--config", str(bench)) == 0
    answers, store = _answers(bench, isolated / "cache", "srv")
    assert answers["a"].thinking == "2+2 is 4." and answers["a"].text == "Four."
    assert store.probe("srv").details.server == "ollama"


def test_validate_warns_for_every_option_the_provider_cannot_pass(isolated, capsys):
    bench = _edit(_openai_bench(isolated, "http://localhost:8080/v1", options=OPTIONS),
                  lambda d: d["models"][0].update(think=True))
    assert bench_cli("validate", "--config", str(bench)) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: models.srv: think cannot be passed through the OpenAI API and is not sent (nor part of the cache "
        "key); whether the model thinks is the server's setting",
        "warning: models.srv: min_p is sent only to llama.cpp and vLLM servers (recognised when the run starts); "
        "another OpenAI-compatible server does not get it",
        "warning: models.srv: num_ctx cannot be passed through the OpenAI API and is not sent (nor part of the "
        "cache key); set it on the server (llama.cpp: --ctx-size)",
        "warning: models.srv: repeat_penalty is sent only to llama.cpp and vLLM servers (recognised when the run "
        "starts); another OpenAI-compatible server does not get it",
        "warning: models.srv: top_k is sent only to llama.cpp and vLLM servers (recognised when the run starts); "
        "another OpenAI-compatible server does not get it",
    ]
    loaded = config.load(bench)
    keyed = plan.request_for(loaded, loaded.models[0], loaded.tasks[0])
    assert "num_ctx" not in keyed.options and keyed.options["top_k"] == 20 and keyed.think is None


def test_openai_itself_gets_max_completion_tokens(isolated):
    with FakeOpenAI({"o4-mini": "one two three four"}, flavor="openai.com") as server:
        bench = _openai_bench(isolated, server.url, model="o4-mini", options={"num_predict": 2})
        assert bench_cli("run", "--config", str(bench)) == 0
        assert server.requests[0]["max_completion_tokens"] == 2 and "max_tokens" not in server.requests[0]
    answers, store = _answers(bench, isolated / "cache", "srv")
    assert answers["a"].done_reason == "length" and store.probe("srv").details.server == "openai"
