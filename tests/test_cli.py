"""The CLI: thin, documented, and never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, bench_cli

from generator.arguments import build_parser


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`bench {name}" in readme, f"README's command table lacks bench {name}"
    for target in ("bench", "test", "serve", "perf", "demo"):
        assert f"`make {target}`" in readme
    assert readme.split("\n```sh\n", 1)[1].startswith("make bench ") and "\nmake test " in readme


def test_usage_error_exits_2_without_traceback(capsys):
    with pytest.raises(SystemExit) as caught:
        bench_cli("frobnicate")
    assert caught.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_python_dash_m_generator_is_the_bench_command(isolated):
    (isolated / "benchmark.yaml").write_text(
        "title: T\nmodels: [{id: a, model: m}]\ntasks: [{id: t, title: T, prompt: p}]\n")
    done = subprocess.run([sys.executable, "-m", "generator", "validate"], cwd=isolated, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == "benchmark.yaml: ok (1 models, 1 tasks, 0 checks)"


def test_a_reason_with_brackets_is_printed_as_text(server, isolated, capsys):
    from conftest import write_bench

    local = server.models["gemma3:4b"]
    local.fault, local.fault_status, local.fault_body = "status", 500, '{"error":"[/bold] [red]boom[/red]"}'
    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url,
                        tasks=[{"id": "t", "title": "T", "prompt": "p"}], extra={"defaults": {"retries": 0}})
    assert bench_cli("run", "--config", str(bench)) == 0
    assert f"failed t × local: HTTP 500 from {server.url}: [/bold] [red]boom[/red]" in capsys.readouterr().err


def test_only_with_an_unknown_id_is_a_usage_error(server, isolated, capsys):
    from conftest import write_bench

    bench = write_bench(isolated / "benchmark.yaml", big_host=server.url)
    assert bench_cli("run", "--config", str(bench), "--only", "nope") == 2
    assert "Error: --only nope: no task or model has that id; see 'bench status'" in capsys.readouterr().err
    assert not server.generations()
