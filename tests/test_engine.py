"""The engine: each cell called once, cached by what determines the answer, failures recorded and retried."""

from __future__ import annotations

import json

import yaml
from conftest import FakeModel, bench_cli, free_port, write_bench

from generator import cache as cache_mod
from generator import config, plan


def _edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_first_run_calls_each_cell_once_and_rerun_calls_nothing(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations()) == 8
    assert len(server.generations("gemma3:27b")) == 4
    assert "8 cells: 0 cached, 8 called, 0 failed" in capsys.readouterr().out
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations()) == 8
    assert "8 cells: 8 cached, 0 called, 0 failed" in capsys.readouterr().out


def test_editing_one_prompt_recalls_only_that_task(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    _edit(bench, lambda d: d["tasks"][1].update(prompt="A different question."))
    bench_cli("run", "--config", str(bench))
    assert server.prompts()[8:] == ["A different question.", "A different question."]


def test_changing_an_option_recalls_every_cell(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    _edit(bench, lambda d: d["defaults"]["options"].update(temperature=0.9))
    bench_cli("run", "--config", str(bench))
    assert len(server.generations()) == 16
    assert server.generations()[-1].body["options"]["temperature"] == 0.9


def test_changing_host_or_title_calls_nothing(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    _edit(bench, lambda d: (d.update(title="Renamed"), d["tasks"][0].update(title="New title"),
                            d["models"][0].update(host=server.url.replace("127.0.0.1", "localhost"))))
    bench_cli("run", "--config", str(bench))
    assert len(server.generations()) == 8


def test_two_entries_with_one_tag_on_two_hosts_never_share_an_answer(isolated):
    from ollama_server import FakeOllama

    with FakeOllama([FakeModel("gemma3:4b", answer="from host A")]) as a, \
            FakeOllama([FakeModel("gemma3:4b", answer="from host B")]) as b:
        bench = write_bench(isolated / "benchmark.yaml", big_host=a.url, tasks=[
            {"id": "only", "title": "Only", "prompt": "Same prompt."}])
        _edit(bench, lambda d: (d["models"][0].update(model="gemma3:4b", host=a.url),
                                d["models"][1].update(host=b.url)))
        bench_cli("run", "--config", str(bench))
        assert len(a.generations()) == 1 and len(b.generations()) == 1
        loaded = config.load(bench)
        store = cache_mod.AnswerCache.open(isolated / "cache")
        keys = {m.id: plan.cell_key(loaded, m, loaded.tasks[0]) for m in loaded.models}
        assert keys["big-brain"] != keys["local"]
        assert store.answer(keys["big-brain"]).text == "from host A"
        assert store.answer(keys["local"]).text == "from host B"


def test_cached_answer_keeps_its_measurements(server, isolated):
    server.models["gemma3:4b"].chunk_delay_s = 0.05
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
        {"id": "t", "title": "T", "prompt": "Say something."}])
    bench_cli("run", "--config", str(bench))
    loaded = config.load(bench)
    key = plan.cell_key(loaded, loaded.model("local"), loaded.tasks[0])
    first = cache_mod.AnswerCache.open(isolated / "cache").answer(key)
    assert first.latency_ms >= 200  # 4 chunks x 50 ms
    assert first.ttft_ms is not None and first.ttft_ms < first.latency_ms
    assert first.eval_count and first.tokens_per_s and first.done_reason == "stop"
    assert first.digest == "a" * 64 and first.server_version == "0.12.3"
    bench_cli("run", "--config", str(bench))
    assert cache_mod.AnswerCache.open(isolated / "cache").answer(key) == first


def test_no_server_run_finishes_and_status_says_connection_refused(isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}")
    assert bench_cli("run", "--config", str(bench)) == 0
    assert "8 cells: 0 cached, 0 called, 8 failed" in capsys.readouterr().out
    assert bench_cli("status", "--config", str(bench), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8
    assert {r["state"] for r in rows} == {"failed"}
    assert all(r["reason"].startswith("connection refused by http://127.0.0.1:") for r in rows)


def test_failed_cell_is_retried_on_the_next_run(server, isolated):
    model = server.models["gemma3:4b"]
    model.fault, model.fault_status, model.fault_times = "status", 500, 4
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    store = cache_mod.AnswerCache.open(isolated / "cache")
    states = [c.state for c in plan.make_plan(config.load(bench), store)]
    assert states.count("failed") == 4 and states.count("cached") == 4
    bench_cli("run", "--config", str(bench))
    assert len(server.generations("gemma3:4b")) == 8  # 4 failed + 4 retried
    assert all(c.state == "cached" for c in plan.make_plan(config.load(bench), store))


def test_only_limits_the_run_to_the_named_ids(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench), "--only", "task-2", "big-brain") == 0
    assert len(server.generations()) == 5  # task-2 on both models + big-brain's other 3


def test_refresh_calls_again(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    bench_cli("run", "--config", str(bench), "--refresh", "--only", "task-1")
    assert len(server.generations()) == 10


def test_repulled_model_is_called_again(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    server.models["gemma3:4b"].digest = "sha256:" + "c" * 64
    bench_cli("run", "--config", str(bench))
    err = capsys.readouterr().err
    assert "local: gemma3:4b was re-pulled" in err
    assert len(server.generations("gemma3:4b")) == 8 and len(server.generations("gemma3:27b")) == 4


def test_warm_up_loads_the_model_before_the_first_timed_call(server, isolated):
    server.models["gemma3:4b"].load_s = 0.3
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    loads = [r for r in server.log if r.path == "/api/generate" and not r.generation]
    assert {r.body["model"] for r in loads} == {"gemma3:27b", "gemma3:4b"}
    store = cache_mod.AnswerCache.open(isolated / "cache")
    assert store.probe("local").warm_up_ms >= 300
    loaded = config.load(bench)
    answers = [store.answer(plan.cell_key(loaded, loaded.model("local"), t)) for t in loaded.tasks]
    assert all(a.latency_ms < 300 for a in answers)


def test_unknown_model_is_reported_with_what_to_do(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    _edit(bench, lambda d: d["models"][1].update(model="llama9:1b"))
    bench_cli("run", "--config", str(bench))
    bench_cli("status", "--config", str(bench))
    out = capsys.readouterr().out
    assert f"model llama9:1b is not on {server.url}: run 'ollama pull llama9:1b' there" in out
    assert not server.generations("llama9:1b")


def test_thinking_is_kept_apart_from_the_answer(server, isolated):
    server.models["gemma3:4b"].thinking = "Let me weigh the options first."
    server.models["gemma3:4b"].answer = "Final answer."
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
        {"id": "t", "title": "T", "prompt": "Think, then answer."}])
    _edit(bench, lambda d: d["models"][1].update(think=True))
    bench_cli("run", "--config", str(bench))
    loaded = config.load(bench)
    answer = cache_mod.AnswerCache.open(isolated / "cache").answer(
        plan.cell_key(loaded, loaded.model("local"), loaded.tasks[0]))
    assert answer.text == "Final answer."
    assert answer.thinking == "Let me weigh the options first."
    assert server.generations("gemma3:4b")[0].body["think"] is True


def test_answer_cut_by_num_predict_is_recorded_as_length(server, isolated):
    server.models["gemma3:4b"].done_reason = "length"
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=[
        {"id": "t", "title": "T", "prompt": "Write a lot."}])
    bench_cli("run", "--config", str(bench))
    loaded = config.load(bench)
    answer = cache_mod.AnswerCache.open(isolated / "cache").answer(
        plan.cell_key(loaded, loaded.model("local"), loaded.tasks[0]))
    assert answer.done_reason == "length" and answer.cut
