"""Run history and CSV export: what moved between runs, and the tables as CSV next to results.json."""

from __future__ import annotations

import csv
import io
import json

import yaml
from conftest import bench_cli, write_bench
from site_helpers import mkdocs_build, project


def test_history_shows_a_change_after_a_prompt_edit_and_rerun(server, isolated):
    server.models["gemma3:4b"].answer = lambda prompt: f"Small model on: {prompt}"
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench)) == 0
    assert bench_cli("run", "--config", str(bench)) == 0  # calls nothing, so records no run
    runs = json.loads((isolated / "docs" / "history.json").read_text())["runs"]
    assert len(runs) == 1 and len(runs[0]["called"]) == 8

    data = yaml.safe_load(bench.read_text())
    data["tasks"][2]["prompt"] = "An edited question."
    bench.write_text(yaml.safe_dump(data, sort_keys=False))
    assert bench_cli("run", "--config", str(bench)) == 0
    runs = json.loads((isolated / "docs" / "history.json").read_text())["runs"]
    assert [len(r["called"]) for r in runs] == [8, 2]
    assert runs[1]["called"] == ["task-3 × big-brain", "task-3 × local"]

    assert bench_cli("render", "--config", str(bench)) == 0
    page = (isolated / "docs" / "history.md").read_text().replace("\\", "")  # drop Markdown escapes
    rows = [line for line in page.splitlines() if line.startswith("| task-")]
    assert len(rows) == 8
    changed = [r for r in rows if "| changed |" in r]
    assert [r.split(" | ")[0:2] for r in changed] == [["| task-3", "big-brain"], ["| task-3", "local"]]
    assert "[History](history.md)" in (isolated / "docs" / "big-brain-benchmark.md").read_text()
    built = mkdocs_build(project(isolated), isolated / "site")
    assert built.returncode == 0, built.stderr
    assert (isolated / "site" / "history" / "index.html").exists()


def test_comparison_and_latency_tables_as_csv(server, isolated):
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    bench_cli("run", "--config", str(bench))
    bench_cli("render", "--config", str(bench))
    comparison = list(csv.reader(io.StringIO((isolated / "docs" / "comparison.csv").read_text())))
    assert comparison[0] == ["task", "big-brain", "local", "winner", "decided_by", "objectively_clear"]
    assert [r[0] for r in comparison[1:]] == ["task-1", "task-2", "task-3", "task-4"]
    assert all(r[3] == "tie" for r in comparison[1:])  # no checks: nothing separates them
    latency = list(csv.reader(io.StringIO((isolated / "docs" / "latency.csv").read_text())))
    assert latency[0] == ["task", "big-brain_latency_ms", "local_latency_ms"]
    assert all(float(v) > 0 for r in latency[1:] for v in r[1:])
    summary = (isolated / "docs" / "big-brain-benchmark.md").read_text()
    assert "(comparison.csv)" in summary and "(latency.csv)" in summary


def test_an_answer_with_no_earlier_answer_is_new_not_changed(server, isolated):
    local = server.models["gemma3:4b"]
    local.fault, local.fault_status, local.fault_body = "status", 500, '{"error":"down"}'
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url, extra={"defaults": {"retries": 0}})
    assert bench_cli("run", "--config", str(bench)) == 0  # big-brain answers, local fails
    local.fault = None
    assert bench_cli("run", "--config", str(bench)) == 0  # local answers now
    assert bench_cli("render", "--config", str(bench)) == 0
    page = (isolated / "docs" / "history.md").read_text().replace("\\", "")
    rows = [line for line in page.splitlines() if line.startswith("| task-")]
    local_rows = [r for r in rows if " | local | " in r]
    assert len(local_rows) == 4 and all("| new (no earlier answer) |" in r for r in local_rows), local_rows
    assert not any("| changed |" in r for r in rows)
