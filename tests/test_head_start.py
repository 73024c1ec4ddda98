"""The head start: `bench run` asks each machine's first model to load before its own imports, and only when
no stored answer can serve the run (generator/head_start.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, FakeModel, FakeOllama, bench_cli, write_bench

from generator import cache as cache_mod
from generator import cli, head_start, results


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(head_start, "_loads", {})
    monkeypatch.setattr(head_start, "_planner", None)


def _edit(bench, change):
    data = yaml.safe_load(bench.read_text())
    change(data)
    bench.write_text(yaml.safe_dump(data, sort_keys=False))
    return bench


def _num_ctx(data, value=4096):
    data["defaults"]["options"]["num_ctx"] = value


def _bench_process(isolated, *args):
    """`python -m generator` as a user's `bench` runs: a new process, head start included."""
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=isolated, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _loads_asked(server):
    """Empty-prompt /api/generate requests (loads), in arrival order: (model, options)."""
    return [(r.body["model"], r.body.get("options")) for r in server.log
            if r.path == "/api/generate" and not r.body.get("prompt")]


def test_the_first_load_is_asked_for_first_and_its_time_is_the_load_time(isolated):
    with FakeOllama([FakeModel("gemma3:27b", load_s=0.6), FakeModel("gemma3:4b", load_s=0.3)],
                    one_model_at_a_time=True) as server:
        bench = _edit(write_bench(isolated / "benchmark.yaml", big_host=server.url), _num_ctx)
        done = _bench_process(isolated, "run", "--config", str(bench))
        assert done.returncode == 0, done.stderr
        first = server.log[0]
        assert (first.path, first.body["model"], first.body["prompt"], first.body["options"]) == \
            ("/api/generate", "gemma3:27b", "", {"num_ctx": 4096})
        # Only the machine's first model gets a head start; the run's own warm-ups follow, and nothing reloads.
        assert _loads_asked(server) == [("gemma3:27b", {"num_ctx": 4096})] * 2 + [("gemma3:4b", {"num_ctx": 4096})]
        assert server.loads == 2
        assert len(server.generations()) == 8
    store = cache_mod.AnswerCache.open(isolated / "cache")
    # The run's own warm-up waited only for the rest of the load; the head start's request waited for all of it.
    assert store.probe("big-brain").warm_up_ms >= 550
    assert store.probe("local").warm_up_ms >= 250


def test_a_rerun_asks_for_no_load(isolated, server):
    bench = _edit(write_bench(isolated / "benchmark.yaml", big_host=server.url), _num_ctx)
    assert _bench_process(isolated, "run", "--config", str(bench)).returncode == 0
    asked, loads = len(server.log), server.loads
    again = _bench_process(isolated, "run", "--config", str(bench))
    assert again.returncode == 0, again.stderr
    assert "8 cached, 0 called" in again.stdout
    assert not any(r.path in ("/api/generate", "/api/chat") for r in server.log[asked:])
    assert server.loads == loads


def test_answers_committed_in_results_json_mean_no_head_start(isolated, server, monkeypatch):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    assert results.load(isolated / "docs").answers  # the committed record holds the answers
    monkeypatch.setenv("BENCH_CACHE_DIR", str(isolated / "empty-cache"))  # a fresh clone: no cache
    assert head_start.planned(["run", "--config", str(bench)]) == []
    assert [load.model for load in head_start.planned(["run", "--config", str(bench), "--refresh"])] == ["gemma3:27b"]
    assert head_start.planned(["run", "--config", str(bench), "--refresh", "--only", "task-1"]) == []


def test_an_answer_in_the_cache_means_no_head_start(isolated, server):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url,
                        tasks=[{"id": "one", "title": "One", "prompt": "Say one."}])
    assert [load.model for load in head_start.planned(["run", "--config", str(bench)])] == ["gemma3:27b"]
    assert bench_cli("run", "--config", str(bench)) == 0
    # A task added later still finds answers in the cache: the run starts as it would without a head start.
    _edit(bench, lambda d: d["tasks"].append({"id": "two", "title": "Two", "prompt": "Say two."}))
    assert head_start.planned(["run", "--config", str(bench)]) == []
    assert head_start.planned(["run", "--config", str(bench), "--cache-dir", str(isolated / "other")]) != []


def _models(*entries):
    return {"title": "T", "defaults": {"options": {"num_ctx": 2048}},
            "models": list(entries), "tasks": [{"id": "t", "title": "T", "prompt": "p"}]}


def _planned(isolated, data):
    path = isolated / "b.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return [(load.host, load.model, load.options) for load in head_start.planned(["run", "--config", str(path)])]


def test_one_load_per_machine_the_one_the_run_makes_first(isolated):
    pod = {"id": "big", "model": "gemma3:27b", "host": "10.9.8.7:11434", "machine": "pod"}
    laptop = {"id": "small", "model": "gemma3:4b", "host": "localhost:11434"}
    laptop2 = {"id": "tiny", "model": "gemma3:1b", "host": "http://127.0.0.1:11500"}
    assert _planned(isolated, _models(laptop, pod, laptop2)) == [
        ("http://localhost:11434", "gemma3:4b", {"num_ctx": 2048}), ("http://10.9.8.7:11434", "gemma3:27b", {"num_ctx": 2048})]
    # A model the head start leaves to the run (thinking, another provider, a variable) keeps its machine's turn.
    thinking = {**laptop, "think": True}
    assert _planned(isolated, _models(thinking, laptop2)) == []
    served = {"id": "cpp", "provider": "openai", "model": "x", "base_url": "http://127.0.0.1:8080/v1"}
    assert _planned(isolated, _models(served, laptop)) == []
    not_a_mapping = {**laptop, "headers": ["Authorization: x"]}
    assert _planned(isolated, _models(not_a_mapping, pod)) == [("http://10.9.8.7:11434", "gemma3:27b", {"num_ctx": 2048})]


def test_the_load_options_are_those_of_the_first_call(isolated):
    data = _models({"id": "a", "model": "m", "host": "localhost:1", "options": {"num_ctx": 8192, "temperature": 0.1}})
    assert _planned(isolated, data) == [("http://localhost:1", "m", {"num_ctx": 8192})]
    data["tasks"][0]["options"] = {"num_ctx": 16384}
    assert _planned(isolated, data) == [("http://localhost:1", "m", {"num_ctx": 16384})]
    data["tasks"][0]["options"] = {"num_ctx": "16384"}  # validation may read it otherwise: no head start
    assert _planned(isolated, data) == []
    data["tasks"][0]["options"] = {}
    data["defaults"]["warm_up"] = False
    assert _planned(isolated, data) == []


@pytest.mark.parametrize("text", ["models: [", "just text", "- a list", "title: T\nmodels: 3\ntasks: []"])
def test_a_file_it_cannot_read_means_no_head_start_and_the_usual_message(isolated, server, text, capsys):
    (isolated / "benchmark.yaml").write_text(text)
    head_start.begin(["run"])
    assert head_start._loads == {} and not server.log
    assert bench_cli("run") == 2
    assert "Error" in capsys.readouterr().err


def test_no_head_start_for_other_commands_or_missing_files(isolated, server):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    for argv in (["status"], ["render"], ["validate"], ["run", "--config", "missing.yaml"], ["--help"], []):
        head_start.begin(argv)
        assert head_start._loads == {}, argv
    assert head_start.planned(["run", "--config", str(bench)]) != []
    assert not server.log


@pytest.mark.parametrize("argv", [
    ["run"],
    ["run", "--config", "x.yaml", "--cache-dir", "c", "--docs-dir", "d"],
    ["run", "--config=x.yaml", "--refresh"],
    ["run", "--conf", "x.yaml", "--ref"],  # argparse's abbreviations, read the same way
    ["run", "--only", "a", "b", "--config", "y.yaml"],
    ["run", "--allow-unsandboxed", "--docs", "d2"],
])
def test_it_reads_the_arguments_as_the_cli_does(argv):
    full = cli.build_parser().parse_args(argv)
    ours = head_start._arguments(argv)
    if full.only:
        assert ours is None
    else:
        assert (ours.config, ours.cache_dir, ours.docs_dir, ours.refresh) == \
            (full.config, full.cache_dir, full.docs_dir, full.refresh)


def test_its_defaults_are_the_cli_s():
    assert head_start.DEFAULT_CACHE_DIR == cache_mod.DEFAULT_DIR
    assert head_start.RESULTS_FILE == results.FILENAME


def test_a_server_that_is_down_costs_nothing(isolated):
    from conftest import free_port

    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}")
    head_start.begin(["run", "--config", str(bench)])
    (load,) = head_start._loads.values()
    load.thread.join(5)
    assert load.ms is None
    assert head_start.load_ms(load.host, load.model, load.options, sent_at=float("inf")) is None
    assert bench_cli("run", "--config", str(bench)) == 0  # the run reports the host as down, as before


def test_results_json_that_is_damaged_means_no_head_start(isolated, server):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    (isolated / "docs").mkdir()
    (isolated / "docs" / "results.json").write_text(json.dumps({"tasks": "nonsense"}))
    assert head_start.planned(["run", "--config", str(bench)]) == []


def test_variables_are_expanded_as_config_expands_them(isolated, monkeypatch):
    data = _models({"id": "a", "model": "${TAG:-gemma3:4b}", "host": "${HOST:-localhost:11434}",
                    "headers": {"Authorization": "Bearer ${TOKEN:-}", "X-Team": "${TEAM}"}})
    monkeypatch.setenv("TEAM", "blue")
    (isolated / "x.yaml").write_text(yaml.safe_dump(data))
    (load,) = head_start.planned(["run", "--config", str(isolated / "x.yaml")])
    assert (load.host, load.model, load.headers) == ("http://localhost:11434", "gemma3:4b", {"X-Team": "blue"})
    monkeypatch.setenv("TOKEN", "s3cret")
    monkeypatch.setenv("HOST", "http://10.0.0.5:11434")
    (load,) = head_start.planned(["run", "--config", str(isolated / "x.yaml")])
    assert (load.host, load.headers) == ("http://10.0.0.5:11434", {"Authorization": "Bearer s3cret", "X-Team": "blue"})
    monkeypatch.delenv("TEAM")
    assert head_start.planned(["run", "--config", str(isolated / "x.yaml")]) == []  # the run stops there


def test_the_shipped_benchmark_gets_a_head_start_on_a_fresh_clone(isolated):
    loads = head_start.planned(["run", "--config", str(ROOT / "benchmark.yaml"), "--docs-dir", str(isolated / "docs")])
    assert [(load.host, load.model, load.options) for load in loads] == [
        ("http://localhost:11434", "gemma3:27b", {"num_ctx": 8192})]


# -- what a review found (each was a load the run would not have asked for, or a wrong load time) -------------


@pytest.mark.parametrize("argv", [["run", "--help"], ["run", "-h"], ["run", "task-1"], ["--refresh", "run"],
                                  ["run", "--config"], ["run", "--bogus"]])
def test_arguments_the_cli_refuses_or_answers_with_help_load_nothing(isolated, server, argv):
    write_bench(isolated / "benchmark.yaml", big_host=server.url)
    head_start.begin(argv)
    assert head_start._loads == {} and not server.log


def test_a_model_listed_twice_is_given_the_head_start_s_load_time_once(isolated):
    with FakeOllama([FakeModel("gemma3:4b", load_s=0.5)]) as server:
        bench = _edit(write_bench(isolated / "benchmark.yaml", big_host=server.url), _num_ctx)
        _edit(bench, lambda d: (d["models"].pop(0), d["models"].append({**d["models"][0], "id": "again"})))
        assert _bench_process(isolated, "run", "--config", str(bench)).returncode == 0
        assert server.loads == 1
    store = cache_mod.AnswerCache.open(isolated / "cache")
    assert store.probe("local").warm_up_ms >= 450
    assert store.probe("again").warm_up_ms < 100  # it found the model loaded: it paid for no load


def test_a_proxy_https_or_a_busy_cache_means_no_head_start(isolated, server, monkeypatch):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    argv = ["run", "--config", str(bench)]
    assert head_start.planned(argv) != []
    assert head_start.planned(argv, {"HTTPS_PROXY": "http://proxy:3128"}) == []
    assert head_start.planned(argv, {"all_proxy": "socks5://proxy:1080"}) == []
    _edit(bench, lambda d: d["models"][0].update(host=server.url.replace("http:", "https:")))
    assert head_start.planned(argv) == []  # https: TLS trust is httpx's to decide
    _edit(bench, lambda d: d["models"][0].update(host=server.url))
    store = cache_mod.AnswerCache.open(isolated / "cache")
    with store.run_lock():  # another bench run holds the cache: this one will stop, and load nothing
        assert head_start.planned(argv) == []
    assert head_start.planned(argv) != []


@pytest.mark.parametrize("edit", [
    lambda d: d["models"][0].update(hots=d["models"][0].pop("host")),  # a typo leaves the host at localhost
    lambda d: d["defaults"]["options"].update(num_gpu=0),
    lambda d: d.update(modles=[]),
    lambda d: d["defaults"].update(timeout_s=float("inf")),
])
def test_a_key_config_would_refuse_or_a_value_it_would_read_otherwise_sends_nothing(isolated, server, edit):
    bench = _edit(write_bench(isolated / "benchmark.yaml", big_host=server.url), edit)
    assert head_start.planned(["run", "--config", str(bench)]) == []


def test_a_key_given_twice_sends_nothing(isolated, server):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    lines = bench.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == f"host: {server.url}")
    lines.insert(at, lines[at].replace(server.url, "http://127.0.0.1:9"))
    bench.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match="given twice"):
        head_start.planned(["run", "--config", str(bench)])
    head_start.begin(["run", "--config", str(bench)])
    assert head_start._loads == {} and not server.log


def test_the_keys_it_knows_are_config_s():
    from generator import config

    assert head_start.TOP_KEYS == set(config.Benchmark.model_fields) - {"source_sha256", "source_path"}
    assert head_start.DEFAULTS_KEYS == set(config.Defaults.model_fields)
    assert head_start.MODEL_KEYS == set(config.ModelSpec.model_fields)
    assert head_start.OPTION_KEYS == set(config.Options.model_fields)


@pytest.mark.parametrize("name", ["results?v2", "run#2"])
def test_a_cache_path_with_uri_characters_is_read_not_made(isolated, server, name):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench), "--cache-dir", name) == 0
    before = sorted(p.name for p in isolated.iterdir())
    assert head_start.planned(["run", "--config", str(bench), "--cache-dir", name]) == []  # answers are there
    assert sorted(p.name for p in isolated.iterdir()) == before


def test_nothing_is_printed_whatever_fails(isolated, capfd):
    (isolated / "benchmark.yaml").write_text("title: T\nmodels: [{id: a, model: m, host: 'http://[::1'}]\ntasks: [x]\n")
    head_start.begin(["run"])
    load = head_start.Load("http://127.0.0.1:1", "m", {}, {}, float("inf"))  # a timeout the socket refuses
    head_start._send(load)
    assert load.ms is None and load.sent.is_set()
    assert capfd.readouterr() == ("", "")
