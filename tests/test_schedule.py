"""Scheduling: hosts in parallel, one model at a time per host, per-host concurrency, seeding from results.json."""

from __future__ import annotations

import shutil

import yaml
from conftest import FakeModel, FakeOllama, bench_cli, write_bench


def _spans(server):
    """(start, model) of every generation request, in arrival order."""
    return [(r.at, r.body["model"]) for r in server.generations()]


def test_one_host_serves_model_by_model_not_alternating(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    assert [m for _, m in _spans(server)] == ["gemma3:27b"] * 4 + ["gemma3:4b"] * 4


def _machines(bench, *keys):
    data = yaml.safe_load(bench.read_text())
    for model, key in zip(data["models"], keys):
        model["machine"] = key
    bench.write_text(yaml.safe_dump(data))


def test_hosts_on_two_machines_run_at_the_same_time(isolated):
    with FakeOllama([FakeModel("gemma3:27b", chunk_delay_s=0.05)]) as a, \
            FakeOllama([FakeModel("gemma3:4b", chunk_delay_s=0.05)]) as b:
        bench = write_bench(isolated / "benchmark.yaml", big_host=a.url, local_host=b.url)
        _machines(bench, "pod", "laptop")
        bench_cli("run", "--config", str(bench))
        first_a, last_a = _spans(a)[0][0], _spans(a)[-1][0]
        first_b, last_b = _spans(b)[0][0], _spans(b)[-1][0]
    assert first_b < last_a and first_a < last_b  # the two hosts' calls overlap in time


def test_two_hosts_on_one_machine_take_turns_and_say_so(isolated, capsys):
    with FakeOllama([FakeModel("gemma3:27b", chunk_delay_s=0.02)]) as a, \
            FakeOllama([FakeModel("gemma3:4b", chunk_delay_s=0.02)]) as b:
        bench = write_bench(isolated / "benchmark.yaml", big_host=a.url, local_host=b.url.replace("127.0.0.1",
                                                                                                  "localhost"))
        bench_cli("run", "--config", str(bench))
        spans_a, spans_b = _spans(a), _spans(b)
    assert spans_a[-1][0] < spans_b[0][0]  # every loopback address is this machine: one queue
    assert (f"note {a.url}, {b.url.replace('127.0.0.1', 'localhost')} are on one machine (this machine): their "
            f"models are called one after the other") in capsys.readouterr().err


def _two_calls_at_once(server, isolated):
    """A benchmark whose host takes two calls at once, each answer streamed over 0.2 s; run once."""
    for m in server.models.values():
        m.chunk_delay_s = 0.05
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    data = yaml.safe_load(bench.read_text())
    data["defaults"]["concurrency_per_host"] = 2
    bench.write_text(yaml.safe_dump(data))
    bench_cli("run", "--config", str(bench))
    return bench


def test_an_answer_says_when_another_call_ran_on_its_machine(server, isolated):
    from generator import cache as cache_mod

    bench = _two_calls_at_once(server, isolated)
    store = cache_mod.AnswerCache.open(isolated / "cache")
    keys = [k.split(":", 1)[1] for k in store._store.iterkeys() if str(k).startswith("answer:")]
    assert all(store.answer(k).machine_busy for k in keys)
    store.close()
    bench_cli("render", "--config", str(bench))
    assert ('<p class="admonition-title">Shared machine: another call ran beside this one</p><p>Another call ran on '
            'the same machine while this answer was generated, so its latency and tokens/s may be slower than the '
            'model alone would give.</p>') in (isolated / "docs" / "tasks" / "task-2.md").read_text()
    bench_cli("run", "--config", str(bench), "--refresh", "--only", "task-1")  # one call per model: alone
    store = cache_mod.AnswerCache.open(isolated / "cache")
    assert [store.answer(k).machine_busy for k in keys if store.answer(k).task_id == "task-1"] == [False, False]


def test_concurrency_per_host_puts_that_many_calls_in_flight(server, isolated):
    _two_calls_at_once(server, isolated)
    starts = [t for t, m in _spans(server) if m == "gemma3:27b"]
    assert starts[1] - starts[0] < 0.15  # the second call did not wait for the first (0.2 s) to finish
    assert len(server.generations()) == 8


def test_a_fresh_cache_is_seeded_from_results_json_instead_of_calling(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    bench_cli("render", "--config", str(bench))
    shutil.rmtree(isolated / "cache")
    capsys.readouterr()
    assert bench_cli("run", "--config", str(bench)) == 0
    assert "8 cells: 0 cached, 8 from results.json, 0 called, 0 failed" in capsys.readouterr().out
    assert len(server.generations()) == 8
    bench_cli("run", "--config", str(bench), "--refresh", "--only", "task-1")
    assert len(server.generations()) == 10  # --refresh calls anyway


def test_hosts_are_grouped_by_machine():
    from generator.config import ModelSpec
    from generator.machines import group_by_machine

    def spec(i, host, machine=None):
        return ModelSpec(id=f"m{i}", model="x", host=host, machine=machine)

    loopback = [spec(1, "http://localhost:11434"), spec(2, "127.0.0.1:8080"), spec(3, "http://[::1]:9")]
    assert list(group_by_machine(loopback)) == ["this machine"]
    remote = [spec(1, "http://10.0.0.1:11434"), spec(2, "http://10.0.0.2:11434"), spec(3, "http://10.0.0.1:8080")]
    assert {k: [m.id for m in ms] for k, ms in group_by_machine(remote).items()} == {
        "address 10.0.0.1": ["m1", "m3"], "address 10.0.0.2": ["m2"]}
    declared = [spec(1, "http://10.0.0.1:11434", "box"), spec(2, "http://10.0.0.2:11434", "box"),
                spec(3, "http://localhost:11434", "laptop")]
    assert {k: [m.id for m in ms] for k, ms in group_by_machine(declared).items()} == {
        "machine box": ["m1", "m2"], "machine laptop": ["m3"]}
