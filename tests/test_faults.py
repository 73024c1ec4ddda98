"""Faults: every failure of an endpoint ends as one recorded line, other cells unaffected, retried next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import diskcache
import pytest
import yaml
from conftest import ROOT, FakeModel, FakeOllama, bench_cli, write_bench

from generator import cache as cache_mod
from generator import config, plan, results

TASKS = [{"id": "first", "title": "First", "prompt": "One."}, {"id": "second", "title": "Second", "prompt": "Two."}]


def _states(bench_path, cache_dir):
    store = cache_mod.AnswerCache.open(cache_dir)
    try:
        return {(c.task_id, c.model_id): c for c in plan.make_plan(config.load(bench_path), store)}
    finally:
        store.close()


# (fault settings on the local model, timeout_s, expected start of the recorded reason)
FAULT_MATRIX = {
    "404 at generation": (dict(fault="status", fault_status=404, fault_body='{"error":"model \\"gemma3:4b\\" not found"}'),
                          10, "HTTP 404 from {url}: model \"gemma3:4b\" not found; run 'ollama pull gemma3:4b' there"),
    "500": (dict(fault="status", fault_status=500, fault_body='{"error":"CUDA out of memory"}'),
            10, "HTTP 500 from {url}: CUDA out of memory"),
    "proxy 404 html page": (dict(fault="status", fault_status=404, fault_body="<html><body>Not Found</body></html>"),
                            10, "HTTP 404 from {url}: Not Found; is the endpoint up?"),
    "timeout before first token": (dict(fault="hang", first_token_delay_s=3), 1,
                                   "no answer from {url} within timeout_s=1s"),
    "timeout during the answer": (dict(fault="stall", chunk_delay_s=3), 1, "no answer from {url} within timeout_s=1s"),
    "stream cut mid-answer": (dict(fault="cut"), 10, "{url} closed the connection mid-answer (stream cut)"),
    "malformed NDJSON line": (dict(fault="malformed"), 10, "{url} sent a malformed response line"),
    "error line mid-stream": (dict(fault="error_line"), 10,
                              "the server reported an error mid-answer: model runner has unexpectedly stopped"),
    "10 MB answer": (dict(answer="x" * 10_000_000, chunks=10), 10,
                     "the answer passed max_answer_chars=2000000 and was dropped"),
}


@pytest.mark.parametrize("case", list(FAULT_MATRIX))
def test_fault_is_recorded_in_one_line_and_retried_next_run(server, isolated, case):
    settings, timeout_s, reason = FAULT_MATRIX[case]
    local = server.models["gemma3:4b"]
    for name, value in settings.items():
        setattr(local, name, value)
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS,
                        extra={"defaults": {"timeout_s": timeout_s, "retries": 0}})
    assert bench_cli("run", "--config", str(bench)) == 0
    cells = _states(bench, isolated / "cache")
    for task in ("first", "second"):
        assert cells[(task, "big-brain")].state == "cached"  # the other model is unaffected
        failed = cells[(task, "local")]
        assert failed.state == "failed"
        assert failed.reason == reason.format(url=server.url)
        assert "\n" not in failed.reason
    for name in settings:
        setattr(local, name, getattr(FakeModel(local.tag), name))
    local.answer = "Recovered."
    before = len(server.generations("gemma3:4b"))
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations("gemma3:4b")) == before + 2
    assert len(server.generations("gemma3:27b")) == 2
    assert all(c.state == "cached" for c in _states(bench, isolated / "cache").values())


def test_unknown_host_name_is_explained(isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host="http://no-such-host.invalid:11434", tasks=TASKS)
    assert bench_cli("run", "--config", str(bench)) == 0
    cell = _states(bench, isolated / "cache")[("first", "big-brain")]
    assert cell.reason == "cannot resolve the host name of http://no-such-host.invalid:11434: check the URL"


@pytest.mark.parametrize("status", [502, 503])
def test_transient_status_is_retried_with_backoff_before_recording(server, isolated, status):
    local = server.models["gemma3:4b"]
    local.fault, local.fault_status, local.fault_body, local.fault_times = "status", status, '{"error":"busy"}', 2
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS[:1],
                        extra={"defaults": {"retries": 2}})
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations("gemma3:4b")) == 3  # two failures, then the answer
    assert _states(bench, isolated / "cache")[("first", "local")].state == "cached"


def test_connection_reset_is_retried_then_recorded(server, isolated):
    local = server.models["gemma3:4b"]
    local.fault = "reset"
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS[:1],
                        extra={"defaults": {"retries": 1}})
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations("gemma3:4b")) == 2
    cell = _states(bench, isolated / "cache")[("first", "local")]
    assert cell.state == "failed" and cell.reason == f"connection to {server.url} was reset"


# -- interrupts and concurrent runs -------------------------------------------------------------------


def _slow_bench(isolated, server, n=6, delay=0.15):
    for m in server.models.values():
        m.chunk_delay_s = delay
    tasks = [{"id": f"t{i}", "title": f"T{i}", "prompt": f"Prompt {i}."} for i in range(n)]
    return write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=tasks)


def _spawn_run(bench, isolated):
    env = {**os.environ, "BENCH_CACHE_DIR": str(isolated / "cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "generator", "run", "--config", str(bench)], cwd=isolated,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_answers(server, count, limit_s=20):
    end = time.monotonic() + limit_s
    while len(server.generations()) < count and time.monotonic() < end:
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_cells_and_exits_130(server, isolated, sig):
    bench = _slow_bench(isolated, server)
    proc = _spawn_run(bench, isolated)
    _wait_for_answers(server, 4)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Interrupted: finished cells are kept; run 'bench run' again to call the rest." in err
    assert "Traceback" not in err
    for m in server.models.values():
        m.chunk_delay_s = 0  # the rest may now answer at once
    cells = _states(bench, isolated / "cache")
    done = [c for c in cells.values() if c.state == "cached"]
    assert 2 <= len(done) < 12
    assert all(c.state in ("cached", "missing") for c in cells.values())  # no half-written entry
    calls_before = len(server.generations())
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations()) - calls_before == 12 - len(done)


def test_a_second_run_on_the_same_cache_is_refused_not_interleaved(server, isolated, capsys):
    bench = _slow_bench(isolated, server, n=4)
    proc = _spawn_run(bench, isolated)
    _wait_for_answers(server, 1)
    code = bench_cli("run", "--config", str(bench))
    for m in server.models.values():
        m.chunk_delay_s = 0
    assert code == 1
    assert f"Another run holds the cache at {isolated / 'cache'}" in capsys.readouterr().err
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert len(server.generations()) == 8  # nothing was called twice


# -- the cache itself ---------------------------------------------------------------------------------


def test_damaged_cache_gives_a_way_out(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS[:1])
    bench_cli("run", "--config", str(bench))
    (isolated / "cache" / "cache.db").write_bytes(b"this is not a database" * 100)
    assert bench_cli("run", "--config", str(bench)) == 1
    err = capsys.readouterr().err
    assert f"The cache at {isolated / 'cache'} cannot be opened" in err
    assert "Run 'bench cache clear' to start a new one" in err and "Traceback" not in err
    assert bench_cli("cache", "clear") == 0
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("cache", "info") == 0
    assert "2 answer" in capsys.readouterr().out


def test_another_model_server_keeps_working_when_one_host_is_down(isolated):
    with FakeOllama([FakeModel("gemma3:4b")]) as up:
        bench = write_bench(isolated / "benchmark.yaml", big_host="http://127.0.0.1:9", local_host=up.url,
                            tasks=TASKS)
        data = yaml.safe_load(bench.read_text())
        bench.write_text(yaml.safe_dump(data))
        assert bench_cli("run", "--config", str(bench)) == 0
        cells = _states(bench, isolated / "cache")
        assert cells[("first", "local")].state == "cached"
        assert cells[("first", "big-brain")].state == "failed"


def test_a_cell_whose_answer_cannot_be_stored_fails_alone_and_is_counted(server, isolated, monkeypatch, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    real_put = cache_mod.AnswerCache.put_answer

    def put_answer(self, answer):
        if (answer.task_id, answer.model_id) == ("first", "big-brain"):
            raise OSError("No space left on device")
        real_put(self, answer)

    monkeypatch.setattr(cache_mod.AnswerCache, "put_answer", put_answer)
    assert bench_cli("run", "--config", str(bench)) == 0
    logs = capsys.readouterr()
    assert logs.out.strip().endswith("4 cells: 0 cached, 3 called, 1 failed")
    reason = "the result could not be kept (OSError: No space left on device); 'bench run' tries the cell again"
    assert f"failed first × big-brain: {reason}" in logs.err
    cells = _states(bench, isolated / "cache")
    assert cells[("first", "big-brain")].state == "failed" and cells[("first", "big-brain")].reason == reason
    assert [c.state for k, c in cells.items() if k != ("first", "big-brain")] == ["cached"] * 3


def test_a_damaged_cache_entry_is_a_miss_for_that_cell_only(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    assert bench_cli("run", "--config", str(bench)) == 0
    damaged = _states(bench, isolated / "cache")[("first", "local")].key
    with diskcache.Cache(str(isolated / "cache")) as raw:
        raw[f"answer:{damaged}"] = '{"text": "half an ent'
    cells = _states(bench, isolated / "cache")
    assert cells[("first", "local")].state == "missing"
    assert [c.state for k, c in cells.items() if k != ("first", "local")] == ["cached"] * 3
    before = len(server.generations())
    assert bench_cli("run", "--config", str(bench)) == 0
    assert len(server.generations()) == before + 1


def test_a_damaged_results_entry_is_skipped_and_named_and_the_rest_loads(server, isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TASKS)
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    path = isolated / "docs" / "results.json"
    document = json.loads(path.read_text())
    document["tasks"][0]["cells"][0]["latency_ms"] = "not a number"
    document["tasks"][1]["cells"][1]["answer"] = "lone \ud800 surrogate"  # json.dumps writes it as \ud800
    path.write_text(json.dumps(document))
    portable = results.load(isolated / "docs")
    assert len(portable.answers) == 3
    assert portable.problems == [f"{path}: tasks[0].cells[0].latency_ms: Input should be a valid number, "
                                 f"unable to parse string as a number; skipped"]
    assert "lone \ufffd surrogate" in [a.text for a in portable.answers.values()]
    assert bench_cli("cache", "clear") == 0
    capsys.readouterr()
    assert bench_cli("status", "--config", str(bench)) == 0  # the damaged cell is missing, the rest committed
    logs = capsys.readouterr()
    assert "note docs/results.json: tasks[0].cells[0].latency_ms" in logs.err
    assert "3 committed, 1 missing" in logs.out
    assert bench_cli("render", "--config", str(bench)) == 0
