"""Facts the report states are true: a load time stays with the answers it was measured for, the host and
hardware shown are the ones the answers were made on, and the CLI says each thing once and calmly."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import bench_cli, free_port, write_bench

from generator.cli import build_parser

TWO = [{"id": "a", "title": "A", "prompt": "Question a."}, {"id": "b", "title": "B", "prompt": "Question b."}]


def _summary(docs) -> str:
    return (docs / "big-brain-benchmark.md").read_text()


def test_a_warm_rerun_that_adds_one_task_keeps_the_first_load_time(server, isolated):
    server.models["gemma3:27b"].load_s = 0.3
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TWO)
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    first = {m["id"]: m["warm_up_ms"] for m in json.loads((isolated / "docs/results.json").read_text())["models"]}
    assert first["big-brain"] >= 300
    # One task more: the model is still resident, so this run's warm-up measures ~0 ms.
    write_bench(bench, big_host=server.url, tasks=[*TWO, {"id": "c", "title": "C", "prompt": "Question c."}])
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("render", "--config", str(bench)) == 0
    data = json.loads((isolated / "docs/results.json").read_text())
    assert {m["id"]: m["warm_up_ms"] for m in data["models"]} == first
    new_cell = next(c for t in data["tasks"] if t["id"] == "c" for c in t["cells"] if c["model"] == "big-brain")
    assert new_cell["warm_up_ms"] < 300  # the new answer keeps its own (warm) measurement


def test_host_and_hardware_come_from_the_answers_not_from_todays_config(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, tasks=TWO)
    assert bench_cli("run", "--config", str(bench)) == 0
    # The pod is gone and the config now points elsewhere, with other declared hardware: nothing is re-run.
    data = yaml.safe_load(bench.read_text())
    data["models"][0]["host"] = "http://elsewhere.invalid:11434"
    data["models"][0]["hardware"] = "a laptop"
    bench.write_text(yaml.safe_dump(data, sort_keys=False))
    assert bench_cli("render", "--config", str(bench)) == 0
    results = json.loads((isolated / "docs/results.json").read_text())
    big = next(m for m in results["models"] if m["id"] == "big-brain")
    assert big["host"] == server.url and big["hardware"] == "test GPU"
    summary = _summary(isolated / "docs")
    assert "elsewhere" not in summary and "a laptop" not in summary


def test_a_render_with_a_pod_url_in_the_environment_writes_no_host_into_the_record_when_nothing_answered(isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host="http://pod-1234.example:11434", tasks=TWO)
    assert bench_cli("render", "--config", str(bench)) == 0
    record = (isolated / "docs" / "results.json").read_text()
    assert "pod-1234" not in record
    assert "http://pod\\-1234\\.example:11434 *(configured)*" in _summary(isolated / "docs")


def test_with_nothing_answered_the_summary_does_not_claim_every_task_was_asked(isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}", tasks=TWO)
    assert bench_cli("render", "--config", str(bench)) == 0
    summary = _summary(isolated / "docs")
    assert "Each model got every task once" not in summary
    assert "No model has answered yet" in summary


def test_a_model_that_is_down_is_one_line_not_one_per_cell(isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}",
                        extra={"defaults": {"retries": 0}})
    assert bench_cli("run", "--config", str(bench)) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "big-brain" in line]
    assert len(lines) == 1, err
    assert "judge:" not in err


@pytest.mark.parametrize("name", sorted(build_parser()._subparsers._group_actions[0].choices))
def test_every_command_has_a_description_in_its_help(name, capsys):
    with pytest.raises(SystemExit):
        bench_cli(name, "--help")
    text = capsys.readouterr().out
    help_line = build_parser()._subparsers._group_actions[0].choices[name].description
    assert help_line and help_line.split(".")[0] in " ".join(text.split())


def test_a_mistyped_command_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit) as caught:
        bench_cli("rnu")
    assert caught.value.code == 2
    assert "did you mean 'bench run'?" in capsys.readouterr().err


def test_a_docs_dir_that_is_a_file_is_one_message_not_a_traceback(isolated, capsys):
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}", tasks=TWO)
    (isolated / "afile").write_text("x")
    assert bench_cli("render", "--config", str(bench), "--docs-dir", "afile") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err and "--docs-dir" in err


def test_a_template_error_names_the_page(isolated, capsys):
    import shutil

    from conftest import ROOT

    shutil.copytree(ROOT / "site_src", isolated / "site_src")
    task = isolated / "site_src/templates/task.md.j2"
    task.write_text(task.read_text() + "\n{{ task.no_such_field }}\n")
    bench = write_bench(isolated / "benchmark.yaml", big_host=f"http://127.0.0.1:{free_port()}", tasks=TWO)
    assert bench_cli("render", "--config", str(bench)) == 1
    err = capsys.readouterr().err
    assert "Error: cannot render tasks/a.md: site_src/templates/task.md.j2" in err and "Traceback" not in err


def test_failures_that_repeat_with_one_reason_are_told_once_then_counted(server, isolated, capsys):
    local = server.models["gemma3:4b"]
    local.fault, local.fault_status, local.fault_body = "status", 500, '{"error":"boom"}'
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, extra={"defaults": {"retries": 0}})
    assert bench_cli("run", "--config", str(bench)) == 0
    err = capsys.readouterr().err
    local_lines = [line for line in err.splitlines() if "local" in line]
    assert len(local_lines) == 2, err
    assert local_lines[0].startswith("failed task-") and local_lines[0].endswith(f"HTTP 500 from {server.url}: boom")
    assert local_lines[1] == "note local: 3 more cell(s) failed the same way"
